#!/usr/bin/env bash
# `make test`: the test files in a few pytest processes, one after another, each with the given pytest
# arguments. TVM and LLVM keep what a process compiled (a whole-model export test adds 0.5 GB), and one
# process for every test grew past the 24 GiB of the 2-vCPU development machines (killed by the OOM
# killer at 77% on AMD Zen 3, 2026-12-02). With a test path among the arguments, one process runs it.
#   bash scripts/test_in_groups.sh [pytest args]      e.g. -m "not rpc", tests/test_search.py -k xgb
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
GROUPS_N=6
for a in "$@"; do
  [[ $a == tests/* || $a == ./tests/* ]] && exec "$PY" -m pytest -q "$@"
done
files=(tests/test_*.py)
n=${#files[@]}
per=$(( (n + GROUPS_N - 1) / GROUPS_N ))
rc=0
for ((i = 0; i < n; i += per)); do
  group=("${files[@]:i:per}")
  echo "== pytest: ${group[0]} .. ${group[-1]} (${#group[@]} files)"
  "$PY" -m pytest -q "$@" "${group[@]}"
  r=$?
  # 5: no test selected in this group (a -m or -k filter), not a failure
  if [[ $r -ne 0 && $r -ne 5 ]]; then rc=$r; fi
done
exit $rc
