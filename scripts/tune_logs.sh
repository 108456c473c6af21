#!/usr/bin/env bash
# Produce the committed tuning logs and the tuner comparison (docs/TUNING.md).
# Long: about 1.5 hours on this 2-core machine. Each step appends to autotune_logs/ and
# writes its results JSON under out/tuning/; rerunning resumes (xgb/random) where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=out/tuning
mkdir -p "$OUT"
T="--timeout 10 --quiet"
step() { echo "== $(date +%T) $*" >&2; }

# 1. Committed host logs: every alexnet layer, four variants, xgb at 64 trials.
for L in conv1 conv2 conv3 conv4 conv5; do
  step "host xgb alexnet.$L"
  $PY -m tvmq tune --target host --workload alexnet.$L --variants float,codebook,int8,im2col --trials 64 \
      --tuner xgb --resume --json $OUT/host-xgb64-$L.json $T
done
# 2. Tuner comparison at 64 trials (float and 5-bit codebook): alexnet conv3 and large bench7.
for W in alexnet.conv3 large.bench7; do
  step "host random $W"
  $PY -m tvmq tune --target host --workload $W --variants float,codebook --trials 64 --tuner random --resume \
      --json $OUT/host-random64-$W.json $T
  [[ $W == large.bench7 ]] && { step "host xgb $W"; $PY -m tvmq tune --target host --workload $W \
      --variants float,codebook --trials 64 --tuner xgb --resume --json $OUT/host-xgb64-$W.json $T; }
  step "host metaschedule $W"
  $PY -m tvmq tune --target host --workload $W --variants float,codebook --trials 64 --tuner metaschedule \
      --json $OUT/host-ms64-$W.json $T
done
# 3. 200 trials on alexnet conv3 float: xgb continues its 64-trial run, MetaSchedule anew.
step "host xgb200 conv3"
$PY -m tvmq tune --target host --workload alexnet.conv3 --variants float --trials 200 --tuner xgb --resume \
    --json $OUT/host-xgb200-alexnet.conv3.json $T
step "host ms200 conv3"
$PY -m tvmq tune --target host --workload alexnet.conv3 --variants float --trials 200 --tuner metaschedule \
    --json $OUT/host-ms200-alexnet.conv3.json $T
# 4. The server target (skylake-avx512 code, runs here): alexnet conv2-conv5, float and int8, 32 trials.
for L in conv2 conv3 conv4 conv5; do
  step "server xgb alexnet.$L"
  $PY -m tvmq tune --target server --workload alexnet.$L --variants float,int8 --trials 32 --tuner xgb \
      --resume --json $OUT/server-xgb32-$L.json $T
done
step done
