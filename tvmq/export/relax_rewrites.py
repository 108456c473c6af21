"""Glue rewritten into cheaper equivalents before it is compiled.

``x ** c`` with a constant exponent that is a multiple of 1/4 (ONNX LRN's beta = 0.75, as TVM's
frontend writes it) becomes square roots and products: the legalized ``power`` calls libm's ``powf``
once per element, scalar (AlexNet's and Inception-v1's LRNs: about 1 ms of the 3-6 ms int8 networks on
AMD Zen 5), where square roots vectorize. For x < 0 both give NaN, as ``powf`` does for a fractional
exponent.
"""

from __future__ import annotations

from .fusion import _const_scalar

QUARTERS = (0.25, 0.5, 0.75, 1.5, 2.0)  # exponents written with at most two square roots and a product


def cheap_power(bb, value):
    """``value`` (a Relax expression) with ``power(x, c)``, c in ``QUARTERS``, as square roots and
    products; else ``value`` itself."""
    import tvm  # lazy: heavy (TVM)
    from tvm import relax

    if not (isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op) and value.op.name == "relax.power"):
        return value
    c = _const_scalar(value.args[1])
    x = value.args[0]
    if c not in QUARTERS or str(x.ty.dtype) != "float32":
        return value
    R = relax.op
    if c == 2.0:
        return R.multiply(x, x)
    if c == 1.5:
        return R.multiply(x, R.sqrt(x))
    s = bb.emit(R.sqrt(x))
    if c == 0.5:
        return s
    q = bb.emit(R.sqrt(s))
    return q if c == 0.25 else R.multiply(s, q)
