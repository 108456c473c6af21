#!/usr/bin/env bash
# The whole-model table (issue 14, docs/MODELS.md): export each model for each quantization, then
# time the export against onnxruntime fp32, onnxruntime's own int8 model and untuned TVM Relax,
# each side in a process of its own, with the per-layer breakdown. Run on a quiet machine.
#   bash scripts/model_bench.sh                      (every model, none/int8/kmeans_int8)
#   MODELS="squeezenet resnet50" QUANT="none int8" bash scripts/model_bench.sh
#   EXPORT_ONLY=1 bash scripts/model_bench.sh       (only the exports: they need no quiet machine)
#   EXPORT_FLAGS=--transfer OUT=out/models_transfer bash scripts/model_bench.sh
#   python scripts/model_table.py out/models        (the markdown table)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-out/models}
MODELS=${MODELS:-"digits squeezenet resnet50 inception_v1 alexnet shufflenet mobilenet_v2"}
QUANT=${QUANT:-"none int8 kmeans_int8"}
REPEAT=${REPEAT:-10}
EXPORT_FLAGS=${EXPORT_FLAGS:-}  # more export flags, e.g. --transfer (then also OUT=...)
mkdir -p "$OUT"
source scripts/models.sh
for M in $MODELS; do
  SRC=$(model_path "$M")
  EXTRA=(); DATA=()
  if [[ $M == digits ]]; then DATA=(--data tvmq/data/digits_test.npz); else EXTRA=(--random-weights 0); fi
  for Q in $QUANT; do
    D=$OUT/$M-$Q
    if [[ ! -e $D/manifest.json ]]; then
      step "export $M $Q"
      BITS=(); [[ $Q == kmeans_int8 ]] && BITS=(--bits 4)
      $PY -m tvmq export --model "$SRC" --quantize "$Q" "${BITS[@]}" "${EXTRA[@]}" $EXPORT_FLAGS --out "$D" 2> "$D.export.log" \
        || { step "FAILED export $M $Q (see $D.export.log)"; continue; }
    fi
    [[ -n ${EXPORT_ONLY:-} ]] && continue
    [[ -e $D/bench/results.json ]] && { step "skip bench $M $Q (done)"; continue; }
    step "bench $M $Q"
    $PY -m tvmq bench --export "$D" "${DATA[@]}" --repeat "$REPEAT" --breakdown --out "$D/bench" \
      > "$D.bench.txt" 2> "$D.bench.log" || step "FAILED bench $M $Q (see $D.bench.log)"
  done
done
step done
