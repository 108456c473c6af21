#!/usr/bin/env bash
# Transfer tuning against cold tuning on THIS machine (issue 15, docs/TUNING.md "Tuning that travels").
# For each layer and variant:
#   transfer: 64 xgb trials with --transfer, from the OTHER machines' logs only (--logs SRC)
#             -> XFER_LOG (default autotune_logs/MACHINE-KIND/transfer/host.jsonl)
#   cold:     200 xgb trials, no warm start, no other machine's records
#             -> COLD_LOG (default autotune_logs/MACHINE-KIND/host.jsonl, this machine's pre-tuned log;
#                use autotune_logs/MACHINE-KIND/cold/host.jsonl for a pair whose task was tuned there since)
# Every transfer run goes first, then the cold runs; a cold run is skipped when the cold logs already
# hold a 200-trial run of the pair with the current kernels (see cold_done), a transfer run when its
# results JSON exists (a rerun continues).
# The 16-trial figure is the transfer run's first 16 trials (xgb does not use the budget in its
# decisions), or, with XFER_TRIALS=16, a run of 16 trials that ends with its own re-time, as a user's
# `tune --trials 16 --transfer` does. Run on a quiet machine.
#   SRC=autotune_logs/amd-znver4-2c bash scripts/transfer_experiment.sh
#   python scripts/transfer_report.py --md; python scripts/transfer_recheck.py --rounds 3 --md
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
KIND=$($PY -c "from tvmq.machine import this_machine; print(this_machine().kind)")
SRC=${SRC:-autotune_logs/amd-znver4-2c}
OUT=${OUT:-out/transfer}
XFER_LOG=${XFER_LOG:-autotune_logs/$KIND/transfer/host.jsonl}
COLD_LOG=${COLD_LOG:-autotune_logs/$KIND/host.jsonl}
LAYERS=${LAYERS:-"alexnet.conv2 alexnet.conv3 alexnet.conv4 alexnet.conv5 large.bench7 large.bench1"}
VARIANTS=${VARIANTS:-"float int8 codebook"}
XFER_TRIALS=${XFER_TRIALS:-64}
PHASES=${PHASES:-"transfer cold"}  # PHASES=transfer: a new transfer method against the cold runs on record
mkdir -p "$OUT"
step() { echo "== $(date +%T) $*" >&2; }
cold_done() {  # a 200-trial cold run of WORKLOAD VARIANT is on record, of today's hand-written kernels
  # (a space with AMX kernels: the same task key; other spaces' keys also change with constraint text
  # that does not change what a config computes, so their older runs still count)
  $PY -c "import sys; sys.path.insert(0, 'scripts'); from transfer_report import logs
from tvmq.targets import get_target; from tvmq.task import Task, kernel_revisions; from tvmq.workload import resolve
t = Task.make(resolve('$1')[0], '$2', get_target('host'))
r = logs('$KIND')['cold'].get(('${1#*.}', '$2'), [])
ok = len(r) >= 200 and (r[0]['task_key'] == t.measure_key('$KIND', 2) or not kernel_revisions(t.space()))
sys.exit(0 if ok else 1)"
}
job() {  # job cold|transfer WORKLOAD VARIANT
  local tag="$1-$2-$3" extra
  if [[ $1 == cold ]]; then
    cold_done "$2" "$3" && { step "skip $tag (a 200-trial cold run is on record)"; return; }
    extra=(--trials 200 --no-warm-start --logs /nonexistent --log "$COLD_LOG")
  else
    [[ -e $OUT/$tag.json ]] && { step "skip $tag (done)"; return; }
    extra=(--trials "$XFER_TRIALS" --transfer --logs "$SRC" --log "$XFER_LOG")
  fi
  step "$tag"
  $PY -m tvmq tune --target host --workload "$2" --variants "$3" --resume --timeout 20 --quiet \
      --json "$OUT/$tag.json" "${extra[@]}" || step "FAILED $tag"
}
for PHASE in $PHASES; do
  for W in $LAYERS; do
    for V in $VARIANTS; do
      job "$PHASE" "$W" "$V"
    done
  done
done
step done
