# Sourced by model_bench.sh and edge_models.sh (after PY and OUT are set): the seven test models.
# shellcheck shell=bash
LIGHT=$($PY -c "import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), 'backend/test/data/light'))")
step() { echo "== $(date +%T) $*" >&2; }
model_path() {  # the ONNX file of a model name (MobileNet-v2 is built once into $OUT)
  case $1 in
    digits) echo tvmq/data/digits_cnn.onnx ;;
    alexnet) echo "$LIGHT/light_bvlc_alexnet.onnx" ;;
    mobilenet_v2) [[ -e $OUT/mobilenet_v2.onnx ]] || $PY scripts/make_mobilenet_v2.py "$OUT/mobilenet_v2.onnx" >&2
                  echo "$OUT/mobilenet_v2.onnx" ;;
    *) echo "$LIGHT/light_$1.onnx" ;;
  esac
}
