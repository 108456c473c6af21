#!/usr/bin/env bash
# Candidates per minute with 1, 2 and 4 emulated boards behind one tracker (docs/EDGE.md).
# Each run tunes alexnet conv5 (float) for TRIALS trials from a fresh log; compile time is included.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
TRIALS=${TRIALS:-16}
for N in ${BOARDS:-1 2 4}; do
  $PY -m tvmq edge down >/dev/null 2>&1 || true
  $PY -m tvmq edge up --servers "$N" >/dev/null 2>&1
  rm -f "out/boards/$N.jsonl"; mkdir -p out/boards
  t0=$(date +%s)
  $PY -m tvmq tune --target edge --workload alexnet.conv5 --variants float --trials "$TRIALS" --batch-size 8 \
      --rpc-tracker 127.0.0.1:9190 --log "out/boards/$N.jsonl" --no-warm-start --quiet >/dev/null 2>&1
  t1=$(date +%s)
  boards=$($PY -c "import json,sys; print(len({json.loads(l).get('board') for l in open('out/boards/$N.jsonl')}))")
  echo "$N board(s): $TRIALS candidates in $((t1 - t0)) s = $($PY -c "print(round(60 * $TRIALS / max($t1 - $t0, 1), 1))") per minute; records name $boards board(s)"
done
$PY -m tvmq edge down >/dev/null 2>&1 || true
