"""After train_all.sh: each task's best checkpoint to $WORK/ckpts/<task>.ckpt, and its run id and
test metrics to $WORK/train_runs.json / train_metrics.json (run_predict.sh reads them).

Usage: python collect_runs.py WORK
"""

import json
import shutil
import sys
from pathlib import Path

from mlflow.tracking import MlflowClient

work = Path(sys.argv[1])
client = MlflowClient(f"sqlite:///{work / 'mlruns' / 'mlflow.db'}")
(work / "ckpts").mkdir(exist_ok=True)
runs, metrics = {}, {}
for folder in sorted((work / "outputs").iterdir()):
    task = folder.name
    (best,) = sorted((folder / "checkpoints").glob("best-epoch*.ckpt"))
    shutil.copy(best, work / "ckpts" / f"{task}.ckpt")
    experiment = client.get_experiment_by_name(task)
    (run,) = client.search_runs([experiment.experiment_id], max_results=1)
    runs[task] = {"run_id": run.info.run_id, "tags": dict(run.data.tags)}
    metrics[task] = {k: v for k, v in run.data.metrics.items() if k.startswith("test_")}
(work / "train_runs.json").write_text(json.dumps(runs, indent=1, sort_keys=True))
(work / "train_metrics.json").write_text(json.dumps(metrics, indent=1, sort_keys=True))
