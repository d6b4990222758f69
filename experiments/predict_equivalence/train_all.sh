#!/usr/bin/env bash
# Train the six tiny experiments with the OLD code, tracking into $WORK/mlruns, then collect each
# run's best checkpoint and run id (collect_runs.py).
#   OLD=<worktree of the old commit> WORK=<empty folder> bash train_all.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PY:-$ROOT/.venv/bin/python}
: "${OLD:?set OLD to a worktree of the old commit}" "${WORK:?set WORK to an empty folder}"
mkdir -p "$WORK/logs"
cd "$OLD"
export PYTHONPATH=$OLD/src OMP_NUM_THREADS=1
export DEEPMS_DATA_MIRROR=${DEEPMS_DATA_MIRROR:-$(cd "$ROOT/../shared/data" && pwd)}
for task in ${TASKS:-pdeep deeprt deepnovo deeploc deepbind rbppred}; do
  echo "=== $task $(date +%T)"
  "$PY" train.py task=$task experiment=${task}_tiny threads=1 seed=42 \
    logger.mlflow.tracking_uri=sqlite:///$WORK/mlruns/mlflow.db \
    paths.mlruns_dir=$WORK/mlruns \
    hydra.run.dir=$WORK/outputs/$task \
    registry.register=true registry.promote_if=always \
    > "$WORK/logs/train_$task.log" 2>&1
done
"$PY" "$HERE/collect_runs.py" "$WORK"
