#!/usr/bin/env bash
# Baseline `deepms predict` outputs for every task and several option combinations.
#
#   WORK=<folder of train_all.sh> bash run_predict.sh SRC OUT
#
# SRC: the deepms source tree to run (e.g. <old worktree>/src = old code, <repo>/src = new code).
# OUT: output folder (created; must not exist or be empty). Every output goes under OUT; the
# script ends by writing OUT/SHA256SUMS (paths relative to OUT) over everything except OUT/_logs
# (stderr of each command, kept for debugging only: it holds warnings with source paths).
#
# Models: the checkpoint files $WORK/ckpts/<task>.ckpt (with --predictor), the registered
# models:/<task>@champion (and one models:/NAME/1, one runs:/RUN_ID, one run-folder checkpoint
# without --predictor) in the private store sqlite:///$WORK/mlruns/mlflow.db.
# A few commands are expected to fail (unknown modification): their rc and the `deepms: error:`
# line are written to OUT/errors/<name>.txt, so a refactor must fail the same way.
set -uo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 SRC OUT" >&2
  exit 64
fi
SRC=$(cd "$1" && pwd) || exit 64
OUT=$2
mkdir -p "$OUT" || exit 64
OUT=$(cd "$OUT" && pwd)
if [ -n "$(ls -A "$OUT")" ]; then
  echo "$OUT is not empty" >&2
  exit 64
fi

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
B=${WORK:?set WORK to the folder train_all.sh filled}
IN=$B/inputs
CK=$B/ckpts
DB=sqlite:///$B/mlruns/mlflow.db
PY=${PY:-$ROOT/.venv/bin/python}
export PYTHONPATH=$SRC
export DEEPMS_DATA_MIRROR=${DEEPMS_DATA_MIRROR:-$(cd "$ROOT/../shared/data" && pwd)}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
export MLFLOW_TRACKING_URI=$DB   # also for the --rt-model loader (same store either way)
unset DEEPMS_ROOT

mkdir -p "$OUT/_logs" "$OUT/stdout" "$OUT/errors"
cd "$OUT/_logs" || exit 1   # neutral working dir: stray files land in _logs, not in hashed outputs

# sanity: the code under test is SRC
where=$("$PY" -c 'import deepms, os; print(os.path.dirname(os.path.dirname(deepms.__file__)))')
if [ "$where" != "$SRC" ]; then
  echo "deepms imports from $where, not $SRC" >&2
  exit 1
fi

FAILED=0

# p NAME OUTPUT MODEL [predict options...]: run one prediction; stdout (with OUT written as
# "OUT") to OUT/stdout/NAME.txt; stderr to OUT/_logs/NAME.err. A non-zero rc counts as a failure.
p() {
  local name=$1 output=$2 model=$3
  shift 3
  mkdir -p "$(dirname "$OUT/$output")"
  "$PY" -m deepms.cli predict "$model" --output "$OUT/$output" --threads 1 --no-progress "$@" \
    > "$OUT/_logs/$name.out" 2> "$OUT/_logs/$name.err"
  local rc=$?
  sed "s#$OUT/#OUT/#g" "$OUT/_logs/$name.out" > "$OUT/stdout/$name.txt"
  if [ $rc -ne 0 ]; then
    echo "FAILED ($rc): $name" >&2
    tail -3 "$OUT/_logs/$name.err" >&2
    FAILED=$((FAILED + 1))
  else
    echo "ok: $name"
  fi
}

# e NAME OUTPUT MODEL [options...]: a command expected to fail; rc + error line to errors/NAME.txt
e() {
  local name=$1 output=$2 model=$3
  shift 3
  "$PY" -m deepms.cli predict "$model" --output "$OUT/$output" --threads 1 --no-progress "$@" \
    > "$OUT/_logs/$name.out" 2> "$OUT/_logs/$name.err"
  local rc=$?
  {
    echo "rc=$rc"
    grep -E '^deepms: error:|^[A-Za-z_.]*(Error|Exception): ' "$OUT/_logs/$name.err" \
      | sed "s#$OUT/#OUT/#g; s#$SRC/#SRC/#g"
  } > "$OUT/errors/$name.txt"
  if [ $rc -eq 0 ]; then
    echo "UNEXPECTED SUCCESS: $name" >&2
    FAILED=$((FAILED + 1))
  else
    echo "ok (expected error rc=$rc): $name"
  fi
  rm -f "$OUT/$output"
}

PDEEP=deepms.tasks.pdeep.predict.PDeepPredictor
RT=deepms.tasks.deeprt.predict.RTPredictor
NOVO=deepms.tasks.deepnovo.predict.DeNovoPredictor
LOC=deepms.tasks.deeploc.predict.DeepLocPredictor
BIND=deepms.tasks.deepbind.predict.DeepBindPredictor
RBP=deepms.tasks.rbppred.predict.RBPPredPredictor
DIGEST=(--enzyme trypsin --missed-cleavages 0 --charges 2-3 --var-mods Oxidation@M
        --max-var-mods 1 --min-length 7)

# ---------------------------------------------------------------- pdeep (spectral libraries)
# from the checkpoint file
p pdeep_ckpt_csv_tsv      pdeep/ckpt_csv.tsv      $CK/pdeep.ckpt --predictor $PDEEP --input $IN/pdeep_precursors.csv
p pdeep_ckpt_csv_msp      pdeep/ckpt_csv.msp      $CK/pdeep.ckpt --predictor $PDEEP --input $IN/pdeep_precursors.csv
p pdeep_ckpt_csv_parquet  pdeep/ckpt_csv.parquet  $CK/pdeep.ckpt --predictor $PDEEP --input $IN/pdeep_precursors.csv
p pdeep_ckpt_csv_minint   pdeep/ckpt_csv_minint005.tsv $CK/pdeep.ckpt --predictor $PDEEP --input $IN/pdeep_precursors.csv --min-intensity 0.05
p pdeep_ckpt_csv_minint_msp pdeep/ckpt_csv_minint005.msp $CK/pdeep.ckpt --predictor $PDEEP --input $IN/pdeep_precursors.csv --min-intensity 0.05
# the tiny model predicts no ion below ~0.27 of the top one: 0.05 drops nothing, 0.8 drops most
p pdeep_ckpt_csv_minint08 pdeep/ckpt_csv_minint08.tsv $CK/pdeep.ckpt --predictor $PDEEP --input $IN/pdeep_precursors.csv --min-intensity 0.8
p pdeep_ckpt_csv_minint08_msp pdeep/ckpt_csv_minint08.msp $CK/pdeep.ckpt --predictor $PDEEP --input $IN/pdeep_precursors.csv --min-intensity 0.8
p pdeep_ckpt_fasta_minint08 pdeep/ckpt_fasta_digest_minint08_rt.tsv $CK/pdeep.ckpt --predictor $PDEEP --input $IN/pdeep_proteins.fasta --missed-cleavages 0 --min-intensity 0.8 --rt-model models:/deeprt@champion --tracking-uri $DB
p pdeep_ckpt_csv_ce27     pdeep/ckpt_csv_ce27.tsv $CK/pdeep.ckpt --predictor $PDEEP --input $IN/pdeep_precursors.csv --collision-energy 27
p pdeep_ckpt_tsvin_ce27   pdeep/ckpt_nonce_ce27.tsv $CK/pdeep.ckpt --predictor $PDEEP --input $IN/pdeep_precursors_nonce.tsv --collision-energy 27
p pdeep_ckpt_tsvin        pdeep/ckpt_nonce.tsv    $CK/pdeep.ckpt --predictor $PDEEP --input $IN/pdeep_precursors_nonce.tsv
p pdeep_ckpt_csv_chunk7   pdeep/ckpt_csv_chunk7_batch5.tsv $CK/pdeep.ckpt --predictor $PDEEP --input $IN/pdeep_precursors.csv --chunk-size 7 --batch-size 5
p pdeep_ckpt_csv_workers2 pdeep/ckpt_csv_workers2_batch4.tsv $CK/pdeep.ckpt --predictor $PDEEP --input $IN/pdeep_precursors.csv --workers 2 --batch-size 4
p pdeep_ckpt_csv_bf16     pdeep/ckpt_csv_bf16.tsv $CK/pdeep.ckpt --predictor $PDEEP --input $IN/pdeep_precursors.csv --precision bf16
p pdeep_ckpt_fasta_default pdeep/ckpt_fasta_default.tsv $CK/pdeep.ckpt --predictor $PDEEP --input $IN/pdeep_proteins.fasta
p pdeep_ckpt_fasta_digest pdeep/ckpt_fasta_digest.tsv $CK/pdeep.ckpt --predictor $PDEEP --input $IN/pdeep_proteins.fasta "${DIGEST[@]}"
p pdeep_ckpt_fasta_digest_msp pdeep/ckpt_fasta_digest.msp $CK/pdeep.ckpt --predictor $PDEEP --input $IN/pdeep_proteins.fasta "${DIGEST[@]}" --min-intensity 0.05 --collision-energy 27
p pdeep_ckpt_fasta_nofixed pdeep/ckpt_fasta_nofixed_mc2_z1-4.tsv $CK/pdeep.ckpt --predictor $PDEEP --input $IN/pdeep_proteins.fasta --fixed-mods none --missed-cleavages 2 --charges 1,2,3,4 --min-length 6 --max-length 20
p pdeep_ckpt_fasta_lysc   pdeep/ckpt_fasta_lysc_2varmods.tsv $CK/pdeep.ckpt --predictor $PDEEP --input $IN/pdeep_proteins.fasta --enzyme lysc --var-mods Oxidation@M,Acetyl@N-term --max-var-mods 2
# with the deeprt model's RT (the tiny deeprt model knows no modification but CAM, which it drops)
p pdeep_ckpt_cam_rt       pdeep/ckpt_cam_rt.tsv   $CK/pdeep.ckpt --predictor $PDEEP --input $IN/pdeep_precursors_cam.csv --rt-model models:/deeprt@champion --tracking-uri $DB
p pdeep_ckpt_cam_rt_msp   pdeep/ckpt_cam_rt.msp   $CK/pdeep.ckpt --predictor $PDEEP --input $IN/pdeep_precursors_cam.csv --rt-model models:/deeprt@champion --tracking-uri $DB
p pdeep_ckpt_fasta_rt     pdeep/ckpt_fasta_mc0_rt.tsv $CK/pdeep.ckpt --predictor $PDEEP --input $IN/pdeep_proteins.fasta --missed-cleavages 0 --charges 2-3 --min-length 7 --min-intensity 0.05 --collision-energy 27 --rt-model models:/deeprt@champion --tracking-uri $DB
p pdeep_ckpt_fasta_rt_runckpt pdeep/ckpt_fasta_mc0_rt_runckpt.tsv $CK/pdeep.ckpt --predictor $PDEEP --input $IN/pdeep_proteins.fasta --missed-cleavages 0 --rt-model $B/outputs/deeprt/checkpoints/$(basename $B/outputs/deeprt/checkpoints/best-epoch*.ckpt)
e pdeep_err_oxidation_rt  pdeep/err_oxidation_rt.tsv $CK/pdeep.ckpt --predictor $PDEEP --input $IN/pdeep_precursors.csv --rt-model models:/deeprt@champion --tracking-uri $DB
e pdeep_err_bad_enzyme    pdeep/err_bad_enzyme.tsv $CK/pdeep.ckpt --predictor $PDEEP --input $IN/pdeep_proteins.fasta --enzyme '[KR'
# from the registry
p pdeep_reg_csv_tsv       pdeep/reg_csv.tsv       models:/pdeep@champion --tracking-uri $DB --input $IN/pdeep_precursors.csv
p pdeep_reg_csv_msp       pdeep/reg_csv.msp       models:/pdeep@champion --tracking-uri $DB --input $IN/pdeep_precursors.csv
p pdeep_reg_fasta_digest  pdeep/reg_fasta_digest.tsv models:/pdeep@champion --tracking-uri $DB --input $IN/pdeep_proteins.fasta "${DIGEST[@]}"
p pdeep_reg_csv_opts      pdeep/reg_csv_minint005_ce27_rt.tsv models:/pdeep@champion --tracking-uri $DB --input $IN/pdeep_precursors_cam.csv --min-intensity 0.05 --collision-energy 27 --rt-model models:/deeprt@champion
p pdeep_regv1_csv_tsv     pdeep/regv1_csv.tsv     models:/pdeep/1 --tracking-uri $DB --input $IN/pdeep_precursors.csv
# a checkpoint inside its Hydra run folder: the predictor comes from .hydra/config.yaml
p pdeep_runckpt_csv_tsv   pdeep/runckpt_csv.tsv   $(ls $B/outputs/pdeep/checkpoints/best-epoch*.ckpt) --input $IN/pdeep_precursors.csv

# ---------------------------------------------------------------- deeprt
p deeprt_ckpt_csv         deeprt/ckpt.csv         $CK/deeprt.ckpt --predictor $RT --input $IN/deeprt_peptides.csv
p deeprt_ckpt_tsv         deeprt/ckpt.tsv         $CK/deeprt.ckpt --predictor $RT --input $IN/deeprt_peptides.csv
p deeprt_ckpt_parquet     deeprt/ckpt.parquet     $CK/deeprt.ckpt --predictor $RT --input $IN/deeprt_peptides.csv
p deeprt_ckpt_csv_batch7  deeprt/ckpt_batch7_chunk11.csv $CK/deeprt.ckpt --predictor $RT --input $IN/deeprt_peptides.csv --batch-size 7 --chunk-size 11
p deeprt_ckpt_pdeepcsv    deeprt/ckpt_pdeep_cam.csv $CK/deeprt.ckpt --predictor $RT --input $IN/pdeep_precursors_cam.csv
e deeprt_err_oxidation    deeprt/err_oxidation.csv $CK/deeprt.ckpt --predictor $RT --input $IN/deeprt_oxidation.csv
p deeprt_reg_csv          deeprt/reg.csv          models:/deeprt@champion --tracking-uri $DB --input $IN/deeprt_peptides.csv

# ---------------------------------------------------------------- deepnovo
p deepnovo_ckpt_mztab     deepnovo/ckpt.mztab     $CK/deepnovo.ckpt --predictor $NOVO --input $IN/deepnovo_spectra.mgf
p deepnovo_ckpt_csv       deepnovo/ckpt.csv       $CK/deepnovo.ckpt --predictor $NOVO --input $IN/deepnovo_spectra.mgf
p deepnovo_ckpt_b2_mztab  deepnovo/ckpt_beam2_50ppm.mztab $CK/deepnovo.ckpt --predictor $NOVO --input $IN/deepnovo_spectra.mgf --beam-size 2 --precursor-tolerance 50 --tolerance-unit ppm
p deepnovo_ckpt_b2_csv    deepnovo/ckpt_beam2_50ppm.csv $CK/deepnovo.ckpt --predictor $NOVO --input $IN/deepnovo_spectra.mgf --beam-size 2 --precursor-tolerance 50 --tolerance-unit ppm
p deepnovo_ckpt_b5_da_csv deepnovo/ckpt_beam5_0.05Da_batch8.csv $CK/deepnovo.ckpt --predictor $NOVO --input $IN/deepnovo_spectra.mgf --beam-size 5 --precursor-tolerance 0.05 --tolerance-unit Da --batch-size 8 --chunk-size 13
p deepnovo_ckpt_b5_da_mztab deepnovo/ckpt_beam5_0.05Da_batch8.mztab $CK/deepnovo.ckpt --predictor $NOVO --input $IN/deepnovo_spectra.mgf --beam-size 5 --precursor-tolerance 0.05 --tolerance-unit Da --batch-size 8 --chunk-size 13
p deepnovo_reg_mztab      deepnovo/reg.mztab      models:/deepnovo@champion --tracking-uri $DB --input $IN/deepnovo_spectra.mgf
p deepnovo_reg_csv        deepnovo/reg.csv        models:/deepnovo@champion --tracking-uri $DB --input $IN/deepnovo_spectra.mgf
p deepnovo_reg_b2_csv     deepnovo/reg_beam2_50ppm.csv models:/deepnovo@champion --tracking-uri $DB --input $IN/deepnovo_spectra.mgf --beam-size 2 --precursor-tolerance 50 --tolerance-unit ppm

# ---------------------------------------------------------------- sequence tasks
for t in deeploc deepbind rbppred; do
  case $t in
    deeploc) cls=$LOC; fa=$IN/proteins.fasta; tab=$IN/proteins.csv ;;
    deepbind) cls=$BIND; fa=$IN/dna.fasta; tab=$IN/dna.csv ;;
    rbppred) cls=$RBP; fa=$IN/proteins.fasta; tab=$IN/proteins.csv ;;
  esac
  p ${t}_ckpt_fasta_csv   $t/ckpt_fasta.csv       $CK/$t.ckpt --predictor $cls --input $fa
  p ${t}_ckpt_table_csv   $t/ckpt_table.csv       $CK/$t.ckpt --predictor $cls --input $tab
  p ${t}_ckpt_fasta_tsv   $t/ckpt_fasta.tsv       $CK/$t.ckpt --predictor $cls --input $fa
  p ${t}_ckpt_fasta_b3    $t/ckpt_fasta_batch3_chunk4.csv $CK/$t.ckpt --predictor $cls --input $fa --batch-size 3 --chunk-size 4
  p ${t}_reg_fasta_csv    $t/reg_fasta.csv        models:/$t@champion --tracking-uri $DB --input $fa
done
# runs:/RUN_ID (its best checkpoint; predictor named)
LOC_RUN=$("$PY" -c "import json; print(json.load(open('$B/train_runs.json'))['deeploc']['run_id'])")
p deeploc_run_fasta_csv   deeploc/run_fasta.csv   runs:/$LOC_RUN --predictor $LOC --tracking-uri $DB --input $IN/proteins.fasta

# ---------------------------------------------------------------- checksums
cd "$OUT" || exit 1
find . -type f ! -path './_logs/*' ! -name SHA256SUMS | sed 's#^\./##' | LC_ALL=C sort \
  | xargs -d '\n' sha256sum > SHA256SUMS
echo "$(wc -l < SHA256SUMS) files hashed into $OUT/SHA256SUMS; $FAILED unexpected result(s)"
[ $FAILED -eq 0 ]
