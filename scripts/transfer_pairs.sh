#!/usr/bin/env bash
# scripts/transfer_experiment.sh one pair at a time (transfer, then cold), so every finished pair is complete
# on a machine where 18 pairs do not fit in one session (Zen 3, docs/TUNING.md: about 8 minutes a pair).
#   PAIRS="alexnet.conv2:float alexnet.conv5:float" SRC=out/xfer_src bash scripts/transfer_pairs.sh
# Other settings (SRC, OUT, XFER_LOG, COLD_LOG, PHASES) pass through to transfer_experiment.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${PAIRS:-"alexnet.conv2:float alexnet.conv2:int8 alexnet.conv3:codebook alexnet.conv4:int8 alexnet.conv5:float large.bench7:codebook"}
for p in $PAIRS; do
  for ph in ${PHASES:-transfer cold}; do
    PHASES=$ph LAYERS=${p%%:*} VARIANTS=${p#*:} bash scripts/transfer_experiment.sh
  done
done
