"""Weight quantization: k-means codebooks, uniform integers, fixed point; metrics, packing, ONNX in and out.

Everything here is numpy (plus onnx/onnxruntime for models); nothing needs TVM.
"""

from .bnfold import fold_batchnorms, fold_bn
from .evaluate import activation_sparsity, load_dataset, top1
from .fixed import FixedQuant, best_frac, fixed_quantize
from .kmeans import INITS, Codebook, index_dtype, kmeans_quantize
from .metrics import (codebook_rate, distinct_values, formula_bytes, max_abs_diff, nrmse, sparsity, sqnr_db,
                      unique_kernels)
from .onnx_model import (METHODS, ModelQuant, QuantSpec, load_model, quantize_model, read_outputs, weight_layers,
                         write_outputs)
from .pack import pack_codes, pack_signed, packed_nbytes, unpack_codes, unpack_signed
from .uniform import SCALES, UniformQuant, pow2_curve, uniform_quantize

__all__ = [
    "Codebook", "FixedQuant", "INITS", "METHODS", "ModelQuant", "QuantSpec", "SCALES", "UniformQuant",
    "activation_sparsity", "best_frac", "codebook_rate", "distinct_values", "fixed_quantize", "fold_batchnorms",
    "fold_bn", "formula_bytes", "index_dtype", "kmeans_quantize", "load_dataset", "load_model", "max_abs_diff",
    "nrmse", "pack_codes", "pack_signed", "packed_nbytes", "pow2_curve", "quantize_model", "read_outputs",
    "sparsity", "sqnr_db", "top1", "uniform_quantize", "unique_kernels", "unpack_codes", "unpack_signed",
    "weight_layers", "write_outputs",
]
