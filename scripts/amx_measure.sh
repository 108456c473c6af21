#!/usr/bin/env bash
# Issue 18's measurements on an AMX machine, in one quiet sitting (nothing else running):
# tune bf16 (and int8 where this machine has no records) into this machine's pre-tuned log, then
# time the best AMX int8, VNNI int8, bf16 and float kernels against onnxruntime and torch.
#   bash scripts/amx_measure.sh [TRIALS]      (about 30 minutes on a 2-vCPU Emerald Rapids VM)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
TRIALS=${1:-64}
KIND=$($PY -c "from tvmq.machine import for_target; from tvmq.targets import get_target; print(for_target(get_target('host')).kind)")
LOG=autotune_logs/$KIND/host.jsonl
OUT=out/amx; mkdir -p "$OUT"
grep -q amx_int8 /proc/cpuinfo || { echo "amx_measure: this CPU has no AMX (no amx_int8 in /proc/cpuinfo)"; exit 2; }
for wl in alexnet.conv2 alexnet.conv3 alexnet.conv4 alexnet.conv5 large.bench7 large.bench1; do
  $PY -m tvmq tune --target host --workload "$wl" --variants bf16,int8 --trials "$TRIALS" --log "$LOG" --resume \
    --quiet --json "$OUT/tune_${wl}.json"
done
$PY scripts/amx_report.py --log "$LOG" --threads 2 \
  --layers alexnet.conv2,alexnet.conv3,alexnet.conv4,alexnet.conv5,large.bench7,large.bench1 \
  --json "$OUT/amx_report.json" | tee "$OUT/amx_report.md"
