#!/usr/bin/env bash
# Issue 14's edge target: every model exported for the Cortex-A53 (target edge), run on the emulated
# board (qemu) and compared with onnxruntime on the same input, and its library's NEON instructions
# counted (fmla: float FMAs; smlal/smlal2/sdot: widening int8 multiply-adds). Needs `make setup-edge`.
# Timings under qemu are not a board's; this checks that the models build, run and agree.
#   bash scripts/edge_models.sh                          (every model, none/int8/kmeans_int8)
#   MODELS="digits squeezenet" QUANT="int8" bash scripts/edge_models.sh
#   python scripts/edge_table.py out/edge                (the markdown table)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-out/edge}
MODELS=${MODELS:-"digits squeezenet shufflenet mobilenet_v2 alexnet inception_v1 resnet50"}
QUANT=${QUANT:-"none int8 kmeans_int8"}
OBJDUMP=${OBJDUMP:-aarch64-linux-gnu-objdump}
mkdir -p "$OUT"
source scripts/models.sh
for M in $MODELS; do
  SRC=$(model_path "$M")
  EXTRA=(); [[ $M == digits ]] || EXTRA=(--random-weights 0)
  for Q in $QUANT; do
    D=$OUT/$M-$Q
    if [[ ! -e $D/manifest.json ]]; then
      step "export $M $Q (edge)"
      BITS=(); [[ $Q == kmeans_int8 ]] && BITS=(--bits 4)
      $PY -m tvmq export --target edge --model "$SRC" --quantize "$Q" "${BITS[@]}" "${EXTRA[@]}" --out "$D" \
        2> "$D.export.log" || { step "FAILED export $M $Q (see $D.export.log)"; continue; }
    fi
    REF=$SRC; [[ -e $D/source.onnx ]] && REF=$D/source.onnx
    if [[ ! -e $D/run.json ]]; then
      step "run $M $Q on the emulated board"
      $PY -m tvmq run "$D" --compare-onnx "$REF" --json "$D/run.json" > "$D.run.txt" 2>&1 \
        || step "FAILED run $M $Q (see $D.run.txt)"
    fi
    "$OBJDUMP" -d "$D/lib.so" | grep -oE '\s(fmla|fmul|smlal2?|smull2?|sdot|sadalp)\s' | sort | uniq -c > "$D/neon.txt" || true
  done
done
step done
