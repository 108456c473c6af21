#!/usr/bin/env bash
# Tuner comparison for issue 4 (docs/TUNING.md): tvmq xgb vs random vs MetaSchedule at equal trial
# budgets, float and 5-bit codebook, on a quiet machine, into their own log
# (autotune_logs/compare/host.jsonl; MetaSchedule databases beside it). xgb and random do not
# use the budget in their decisions, so the 64-trial point of a 200-trial run is a 64-trial run.
# About 1.5-2 hours here. Rerunning resumes xgb/random; summary:
#   python scripts/tuning_report.py autotune_logs/compare/host.jsonl --results out/compare --md
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
LOG=${LOG:-autotune_logs/compare/host.jsonl}
OUT=${OUT:-out/compare}
mkdir -p "$OUT" "$(dirname "$LOG")"
T="--timeout 20 --quiet --log $LOG"
step() { echo "== $(date +%T) $*" >&2; }
run() {  # run WORKLOAD VARIANT TUNER TRIALS
  local tag="$3$4-$1-$2"
  [[ -e $OUT/$tag.json ]] && { step "skip $tag (done)"; return; }
  step "$tag"
  local r=""; [[ $3 != metaschedule ]] && r="--resume"
  $PY -m tvmq tune --target host --workload "$1" --variants "$2" --trials "$4" --tuner "$3" $r \
      --json "$OUT/$tag.json" $T || step "FAILED $tag"
}
# 64 trials: every alexnet layer and two large layers, float and codebook, three tuners.
for W in ${WORKLOADS:-alexnet.conv2 alexnet.conv4 alexnet.conv5 large.bench1 alexnet.conv1 alexnet.conv3 large.bench7}; do
  for V in float codebook; do
    for TU in xgb random metaschedule; do run "$W" "$V" "$TU" 64; done
  done
done
# 200 trials where time allows (LONG=0 skips): alexnet conv3.
[[ ${LONG:-1} == 0 ]] && { step done; exit 0; }
for V in codebook float; do
  for TU in xgb random metaschedule; do run alexnet.conv3 "$V" "$TU" 200; done
done
step done
