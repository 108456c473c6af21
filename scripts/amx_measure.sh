#!/usr/bin/env bash
# Issue 18's measurements on an AMX machine, in one quiet sitting (nothing else running):
# tune bf16 and int8 (and, on the large suite, float) into this machine's pre-tuned log, then time
# the best AMX int8, VNNI int8, bf16 and float kernels against onnxruntime and torch.
#   bash scripts/amx_measure.sh [TRIALS] [LARGE_TRIALS]
# TRIALS (64) per variant on alexnet conv2-5, bench7 and bench1; LARGE_TRIALS (24) per variant on
# bench2-6, whose float runs take up to a second a candidate (float there starts from the other
# machines' records: --transfer). --resume skips what the log already holds, for this space. About 30 minutes for
# the large suite on a 2-vCPU Emerald Rapids VM.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
TRIALS=${1:-64}
LARGE_TRIALS=${2:-24}
LAYERS=${LAYERS:-alexnet.conv2,alexnet.conv3,alexnet.conv4,alexnet.conv5,large.bench7,large.bench1,large.bench2,large.bench3,large.bench4,large.bench5,large.bench6}
TUNE=${TUNE:-$LAYERS}  # the layers to tune first (all reported); e.g. TUNE=alexnet.conv2,large.bench2
KIND=$($PY -c "from tvmq.machine import for_target; from tvmq.targets import get_target; print(for_target(get_target('host')).kind)")
LOG=autotune_logs/$KIND/host.jsonl
OUT=out/amx; mkdir -p "$OUT"
grep -q amx_int8 /proc/cpuinfo || { echo "amx_measure: this CPU has no AMX (no amx_int8 in /proc/cpuinfo)"; exit 2; }
tune() {  # workload variants trials [extra flags]
  echo "== $(date +%T) tune $1 $2 ($3 trials)" >&2
  $PY -m tvmq tune --target host --workload "$1" --variants "$2" --trials "$3" --log "$LOG" --resume \
    --quiet --json "$OUT/tune_${1}_${2//,/_}.json" "${@:4}"
}
for wl in ${TUNE//,/ }; do
  case $wl in
    large.bench[2-6]) tune "$wl" int8,bf16 "$LARGE_TRIALS"; tune "$wl" float "$LARGE_TRIALS" --transfer ;;
    *) tune "$wl" bf16,int8 "$TRIALS" ;;
  esac
done
echo "== $(date +%T) report" >&2
$PY scripts/amx_report.py --log "$LOG" --threads 2 --layers "$LAYERS" \
  --json "$OUT/amx_report.json" | tee "$OUT/amx_report.md"
