"""Export tuned kernels (or a whole quantized model) as a deployable library, and run it back.

One export is one directory: ``lib.so`` (every kernel, or the whole model, in one shared
library), ``weights.npz`` (plain arrays, never pickle), ``manifest.json`` (versions, target,
per function its workload, variant, argument shapes/dtypes and source record, and the
sha256 of the library and of the weights). ``layers`` and ``model`` build it; ``runtime``
loads and checks it with the TVM runtime only (``tvm.runtime.load_module``; nothing is compiled).
"""

LIB_NAME = "lib.so"
WEIGHTS_NAME = "weights.npz"
MANIFEST_NAME = "manifest.json"
