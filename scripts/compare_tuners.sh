#!/usr/bin/env bash
# Tuner comparison for issue 4 (docs/TUNING.md): tvmq xgb vs random vs MetaSchedule at equal trial
# budgets, float and 5-bit codebook, on a quiet machine, into their own log
# (autotune_logs/amd-znver4-2c/compare/host.jsonl; MetaSchedule databases beside it, one per run).
# xgb and random do not use the budget in their decisions, so a 200-trial run resumes the
# 64-trial one (--resume) and its 64-trial point is the 64-trial run. MetaSchedule does use it
# (and seeds its search from its database), so each budget is a fresh MetaSchedule run.
# Jobs run in order; a job whose results JSON exists is skipped, so rerunning continues.
#   JOBS="xgb:200:alexnet.conv3:float metaschedule:64:alexnet.conv2:int8" bash scripts/compare_tuners.sh
# Default: every alexnet layer and two large layers, float and codebook, 64 then 200 trials
# (many hours here). Summary:
#   python scripts/tuning_report.py autotune_logs/amd-znver4-2c/compare/host.jsonl --results out/compare --md
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
LOG=${LOG:-autotune_logs/amd-znver4-2c/compare/host.jsonl}
OUT=${OUT:-out/compare}
mkdir -p "$OUT" "$(dirname "$LOG")"
step() { echo "== $(date +%T) $*" >&2; }
run() {  # run TUNER TRIALS WORKLOAD VARIANT
  local tag="$1$2-$3-$4"
  [[ -e $OUT/$tag.json ]] && { step "skip $tag (done)"; return; }
  step "$tag"
  local r=""; [[ $1 != metaschedule ]] && r="--resume"
  $PY -m tvmq tune --target host --workload "$3" --variants "$4" --trials "$2" --tuner "$1" $r \
      --json "$OUT/$tag.json" --timeout 20 --quiet --log "$LOG" || step "FAILED $tag"
}
if [[ -z ${JOBS:-} ]]; then
  for N in 64 200; do
    for W in alexnet.conv1 alexnet.conv2 alexnet.conv3 alexnet.conv4 alexnet.conv5 large.bench1 large.bench7; do
      for V in float codebook; do
        for TU in xgb random metaschedule; do JOBS+=" $TU:$N:$W:$V"; done
      done
    done
  done
fi
for J in $JOBS; do IFS=: read -r TU N W V <<<"$J"; run "$TU" "$N" "$W" "$V"; done
step done
