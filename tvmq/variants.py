"""Every variant declared once: operator, template, default parameters, rate unit, exportability;
and every model quantization (``--quantize``) with the variant its kernels run.

Everything else asks this table (``get``, ``template_of``, ``rate_unit``, ``model_variant``)
instead of spelling a variant's meaning again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import TvmqError


@dataclass(frozen=True)
class Variant:
    """One ``--variants`` name."""

    name: str
    op: str  # the operator registry's name (tvmq.ops)
    template: str  # the schedule template and its space, schedules/TEMPLATE.json
    defaults: dict = field(default_factory=dict)  # the operator parameters the name implies
    integer: bool = False  # integer arithmetic: its rate is GOPS, not GFLOPS
    exportable: bool = True  # `tvmq export --variants` can build a layer library of it
    help: str = ""


_DIRECT, _GEMM = "conv2d_direct", "im2col_gemm"
VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("float", "float", _DIRECT, help="fp32 direct convolution"),
    Variant("codebook", "codebook", _DIRECT, {"bits": 5}, help="5-bit indices into a float k-means codebook"),
    Variant("codebook4", "codebook", _DIRECT, {"bits": 4, "planar": 16}, help="4-bit packed codebook indices"),
    Variant("codebook_int8", "codebook_int8", _DIRECT, {"bits": 4, "planar": 64}, integer=True,
            help="4-bit packed indices into an int8 codebook, uint8 activations"),
    Variant("bf16", "bf16", _DIRECT, help="bfloat16 activations and weights, float32 accumulation and output "
            "(AMX-BF16 tiles where the CPU has them)"),
    Variant("int8", "int8", _DIRECT, integer=True, help="uint8 activations, int8 weights, int32 accumulation"),
    Variant("int8w7", "int8w7", _DIRECT, integer=True, help="int8 with 7-bit weights (exact with vpmaddubsw)"),
    Variant("int16", "int16", _DIRECT, integer=True, help="int16 weights and activations"),
    Variant("int4", "int4", _DIRECT, integer=True, help="4-bit weights packed two per byte"),
    Variant("im2col", "im2col_float", _GEMM, exportable=False, help="im2col + GEMM, fp32"),
    Variant("im2col_float", "im2col_float", _GEMM, exportable=False, help="im2col + GEMM, fp32"),
    Variant("im2col_int8", "im2col_int8", _GEMM, integer=True, exportable=False, help="im2col + GEMM, int8"),
    Variant("im2col_codebook", "im2col_codebook", _GEMM, {"bits": 5}, exportable=False,
            help="im2col + GEMM with codebook weights"),
    # grouped / depthwise convolutions (workloads with groups > 1): tvmq/ops/grouped.py
    Variant("grouped_float", "grouped_float", "conv2d_grouped",
            help="fp32 grouped convolution (C_in/groups channels per group), NCHWc"),
    Variant("grouped_int8", "grouped_int8", "conv2d_grouped", integer=True,
            help="grouped convolution, uint8 activations, int8 weights, int32 accumulation, requantized"),
    Variant("depthwise_float", "grouped_float", "conv2d_grouped",
            help="fp32 depthwise convolution (groups == C_in == C_out): the grouped_float operator"),
    Variant("depthwise_int8", "grouped_int8", "conv2d_grouped", integer=True,
            help="int8 depthwise convolution: the grouped_int8 operator"),
)}


@dataclass(frozen=True)
class Quantization:
    """One ``--quantize`` method of a whole model."""

    name: str
    variant: str  # the kernels' variant
    tolerance: float  # largest |export - onnxruntime| / max|onnxruntime| against the same (dequantized) weights
    integer_activations: bool  # uint8 activations, quantized in the graph from calibrated ranges
    default_bits: int | None = None


# float arithmetic only for float and codebook; int8 adds activation rounding.
QUANTIZATIONS: dict[str, Quantization] = {q.name: q for q in (
    Quantization("none", "float", 1e-4, False),
    Quantization("kmeans", "codebook", 1e-4, False, default_bits=5),
    Quantization("int8", "int8", 5e-2, True),
    Quantization("kmeans_int8", "codebook_int8", 5e-2, True, default_bits=4),
)}


def get(name: str) -> Variant:
    """The variant called ``name``; an unknown name is a one-line error listing the valid ones."""
    if name not in VARIANTS:
        raise TvmqError(f"unknown variant {name!r}; valid variants are {sorted(VARIANTS)}")
    return VARIANTS[name]


def unknown(names) -> list[str]:
    return [n for n in names if n not in VARIANTS]


def template_of(name: str) -> str:
    """The template of a variant or of an operator name."""
    if name in VARIANTS:
        return VARIANTS[name].template
    for v in VARIANTS.values():
        if v.op == name:
            return v.template
    raise TvmqError(f"unknown variant or operator {name!r}; valid variants are {sorted(VARIANTS)}")


def siblings(name: str) -> list[str]:
    """The other variants with the same template and the same arithmetic (float or integer): their
    configs are this variant's but for a knob or two (a codebook's decode placement)."""
    v = get(name)
    return [o.name for o in VARIANTS.values()
            if o.name != name and o.template == v.template and o.integer == v.integer]


def is_integer(name: str) -> bool:
    v = VARIANTS.get(name)
    return bool(v and v.integer) or any(x.integer for x in VARIANTS.values() if x.op == name)


def rate_unit(name: str) -> str:
    """``GOPS`` for integer variants, ``GFLOPS`` otherwise (2 operations per multiply-add in both)."""
    return "GOPS" if is_integer(name) else "GFLOPS"


def exportable() -> list[str]:
    return sorted(n for n, v in VARIANTS.items() if v.exportable)


def model_variant(quantize: str, bits: int | None) -> str:
    """The variant a model's convolutions run for ``--quantize`` (4-bit k-means packs its indices)."""
    v = QUANTIZATIONS[quantize].variant
    return "codebook4" if v == "codebook" and bits == 4 else v
