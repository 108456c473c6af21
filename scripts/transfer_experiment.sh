#!/usr/bin/env bash
# Transfer tuning against cold tuning on THIS machine (issue 15, docs/TUNING.md "Tuning that travels").
# For each layer and variant:
#   cold:     200 xgb trials, no warm start, no other machine's records
#             -> autotune_logs/MACHINE-KIND/host.jsonl (this machine's pre-tuned log)
#   transfer: 64 xgb trials with --transfer, from the OTHER machines' logs only (--logs SRC)
#             -> autotune_logs/MACHINE-KIND/transfer/host.jsonl
# The 16-trial figure is the transfer run's first 16 trials (xgb does not use the budget in its
# decisions). Run on a quiet machine. A job whose results JSON exists is skipped (rerun continues).
#   SRC=autotune_logs/amd-znver4-2c bash scripts/transfer_experiment.sh
#   python scripts/transfer_report.py --md
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
KIND=$($PY -c "from tvmq.machine import this_machine; print(this_machine().kind)")
SRC=${SRC:-autotune_logs/amd-znver4-2c}
OUT=${OUT:-out/transfer}
LAYERS=${LAYERS:-"alexnet.conv2 alexnet.conv3 alexnet.conv4 alexnet.conv5 large.bench7 large.bench1"}
VARIANTS=${VARIANTS:-"float int8 codebook"}
mkdir -p "$OUT"
step() { echo "== $(date +%T) $*" >&2; }
job() {  # job cold|transfer WORKLOAD VARIANT
  local tag="$1-$2-$3" extra
  [[ -e $OUT/$tag.json ]] && { step "skip $tag (done)"; return; }
  step "$tag"
  if [[ $1 == cold ]]; then
    extra=(--trials 200 --no-warm-start --logs /nonexistent --log "autotune_logs/$KIND/host.jsonl")
  else
    extra=(--trials 64 --transfer --logs "$SRC" --log "autotune_logs/$KIND/transfer/host.jsonl")
  fi
  $PY -m tvmq tune --target host --workload "$2" --variants "$3" --resume --timeout 20 --quiet \
      --json "$OUT/$tag.json" "${extra[@]}" || step "FAILED $tag"
}
for W in $LAYERS; do
  for V in $VARIANTS; do
    job transfer "$W" "$V"
    job cold "$W" "$V"
  done
done
step done
