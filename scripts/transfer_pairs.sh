#!/usr/bin/env bash
# scripts/transfer_experiment.sh one pair at a time (transfer, then cold), so every finished pair is complete
# on a machine where 18 pairs do not fit in one session (Zen 3, docs/TUNING.md: about 8 minutes a pair).
#   PAIRS="alexnet.conv2:float alexnet.conv5:float" SRC=out/xfer_src bash scripts/transfer_pairs.sh
# OWN=autotune_logs/KIND/suite: each pair's transfer run also reads this machine's records of the other
# layers in that folder (scripts/transfer_sources.py writes SRC's logs plus them to out/xfer_own/LAYER):
# the flow of a suite or model tuned on a new machine, where the layers before know this machine.
# Other settings (SRC, OUT, XFER_LOG, COLD_LOG, PHASES) pass through to transfer_experiment.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PAIRS=${PAIRS:-"alexnet.conv2:float alexnet.conv2:int8 alexnet.conv3:codebook alexnet.conv4:int8 alexnet.conv5:float large.bench7:codebook"}
for p in $PAIRS; do
  src=${SRC:-autotune_logs/amd-znver4-2c}
  if [[ -n ${OWN:-} ]]; then
    src=out/xfer_own/${p%%:*}
    $PY scripts/transfer_sources.py --out "$src" --leave-out "${p%%:*}" --this "$OWN" "${SRC:?OWN needs SRC}"
  fi
  for ph in ${PHASES:-transfer cold}; do
    SRC=$src PHASES=$ph LAYERS=${p%%:*} VARIANTS=${p#*:} bash scripts/transfer_experiment.sh
  done
done
