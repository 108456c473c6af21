"""Blocked tensors whose channels are not in order: a ``Mapped`` form holds a tensor in NCHW{block}c with
``phys[c]``, the channel that holds logical channel ``c`` (the other channels hold zeros).

A gathered grouped 1x1 kernel (``gathered.py``) writes each group's outputs padded to whole blocks, and
reads its input channels through a table, so neither a group split nor a channel shuffle moves data: a
shuffle (ShuffleNet's Reshape, Transpose, Reshape) only permutes ``phys``, and per-channel glue (ReLU,
add, pooling, concat) runs on the physical tensor. The logical NCHW tensor is one ``take`` away, made
only where a consumer needs it (dead-code elimination removes the others).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fusion import _op_is
from .layouts import _from_layout, _reblock, _to_layout, blocked_global_pool


@dataclass(frozen=True, eq=False)
class Mapped:
    """``tensor`` (NCHW{block}c, ``c_phys`` channels) holding logical channel ``c`` at ``phys[c]``."""

    tensor: object
    block: int
    phys: np.ndarray

    @property
    def c_phys(self) -> int:
        return int(self.tensor.ty.shape[1]) * self.block

    def same_map(self, other: "Mapped") -> bool:
        return self.block == other.block and self.c_phys == other.c_phys and np.array_equal(self.phys, other.phys)


def identity(tensor, block: int, c: int) -> Mapped:
    return Mapped(tensor, block, np.arange(c))


def group_padded(groups: int, per_group: int, padded: int) -> np.ndarray:
    """``phys`` of a grouped kernel's output: group g's channel k at g * padded + k."""
    return (np.arange(groups)[:, None] * padded + np.arange(per_group)[None, :]).reshape(-1)


def to_logical(bb, m: Mapped, c: int):
    """The NCHW tensor of ``c`` logical channels that ``m`` holds."""
    from tvm import relax  # lazy: heavy (TVM)

    y = _from_layout(bb, m.tensor, "nchwc", m.c_phys)
    if np.array_equal(m.phys, np.arange(m.c_phys)[:c]):
        return bb.emit(relax.op.strided_slice(y, axes=[1], begin=[0], end=[c])) if c != m.c_phys else y
    return bb.emit(relax.op.take(y, relax.const(m.phys.astype(np.int32)), axis=1, mode="clip"))


def to_map(bb, x, block: int, c_phys: int, phys: np.ndarray, src: Mapped | None = None):
    """The NCHW tensor ``x`` in NCHW{block}c with ``c_phys`` channels, logical channel c at ``phys[c]``
    (zeros elsewhere); read from ``src``, a mapped form of ``x``, where there is one (no NCHW between)."""
    from tvm import relax  # lazy: heavy (TVM)

    R = relax.op
    c = int(x.ty.shape[1])
    if src is not None:  # the physical channels of src, the zero channel appended after them
        x = _from_layout(bb, src.tensor, "nchwc", src.c_phys)
        inv = np.full(c_phys, src.c_phys, np.int32)
        inv[phys] = src.phys
    else:
        inv = np.full(c_phys, c, np.int32)  # holes read the zero channel appended at c
        inv[phys] = np.arange(c)
    z = bb.emit(R.nn.pad(x, [0, 0, 0, 1, 0, 0, 0, 0], pad_value=0.0))
    return _to_layout(bb, bb.emit(R.take(z, relax.const(inv), axis=1, mode="clip")), "nchwc", block)


def in_map(bb, x, src: Mapped | None, block: int, c_phys: int, phys: np.ndarray):
    """``x`` in the map (block, c_phys, phys): its mapped form ``src`` as it is where that is the map, else
    ``to_map`` (a fused residual read in its kernel's output map)."""
    if src is not None and src.block == block and src.c_phys == c_phys and np.array_equal(src.phys, phys):
        return src.tensor
    return to_map(bb, x, block, c_phys, phys, src=src)


def shuffle_step(value, forms: dict, pending: dict):
    """One step of a channel shuffle on a mapped tensor: Reshape [n, G, K, h, w] -> Transpose (0, 2, 1, 3, 4)
    -> Reshape [n, G*K, h, w]. Returns the new ``Mapped`` on the last step, else None (``pending`` carries
    the steps between: new var -> (Mapped, G, K, stage))."""
    if _op_is(value, "relax.reshape"):
        src = value.args[0]
        shape = [int(v) for v in value.ty.shape] if hasattr(value, "ty") and value.ty is not None else None
        if shape is None:
            return None
        if src in forms and len(shape) == 5:
            n, c, h, w = [int(v) for v in src.ty.shape]
            if shape[0] == n and shape[1] * shape[2] == c and shape[3:] == [h, w]:
                return ("start", forms[src], shape[1], shape[2])
        if src in pending and pending[src][3] == "transposed" and len(shape) == 4:
            m, g, k, _ = pending[src]
            # logical p = k' * G + g' holds, before, channel g' * K + k'
            p = np.arange(g * k)
            before = (p % g) * k + p // g
            return Mapped(m.tensor, m.block, m.phys[before])
        return None
    if _op_is(value, "relax.permute_dims") and value.args[0] in pending and pending[value.args[0]][3] == "start":
        axes = value.attrs.axes
        if axes is not None and [int(a) for a in axes] == [0, 2, 1, 3, 4]:
            m, g, k, _ = pending[value.args[0]]
            return ("transposed", m, g, k)
    return None


def reblocked(bb, m: Mapped, block: int) -> Mapped:
    """``m`` in NCHW{block}c (``block`` a multiple of its own), zero channels added to fill the last block;
    the map is unchanged."""
    from tvm import relax  # lazy: heavy (TVM)

    R = relax.op
    c = m.c_phys
    cp = -(-c // block) * block
    if cp == c:
        return Mapped(_reblock(bb, m.tensor, m.block, block), block, m.phys)
    y = _from_layout(bb, m.tensor, "nchwc", c)
    y = bb.emit(R.nn.pad(y, [0, 0, 0, cp - c, 0, 0, 0, 0], pad_value=0.0))
    return Mapped(_to_layout(bb, y, "nchwc", block), block, m.phys)


def mapped_twin(bb, value, form):
    """Per-channel glue on mapped inputs (``form(var)``: its ``Mapped`` or None): ReLU/clip, an add of two
    tensors in one map, average/max pooling in NCHW, a channel concat of one block; the twin's
    ``Mapped`` or None. A concat's parts in smaller blocks are reblocked to the largest (``reblocked``)."""
    from tvm import relax  # lazy: heavy (TVM)
    import tvm  # lazy: heavy (TVM)

    R = relax.op
    if not isinstance(value, relax.Call) or not isinstance(value.op, tvm.ir.Op):
        return None
    name, args = value.op.name, value.args
    if name in ("relax.nn.relu", "relax.clip") and (m := form(args[0])) is not None:
        t = R.nn.relu(m.tensor) if name == "relax.nn.relu" else R.clip(m.tensor, args[1], args[2])
        return Mapped(bb.emit(t), m.block, m.phys)
    if name == "relax.add" and len(args) == 2 and (a := form(args[0])) is not None \
            and (b := form(args[1])) is not None and a.same_map(b):
        return Mapped(bb.emit(R.add(a.tensor, b.tensor)), a.block, a.phys)
    if name in ("relax.nn.avg_pool2d", "relax.nn.max_pool2d") and (m := form(args[0])) is not None \
            and (str(value.attrs.layout), str(value.attrs.out_layout)) == ("NCHW", "NCHW"):
        a, lay = value.attrs, f"NCHW{m.block}c"
        f = R.nn.avg_pool2d if name == "relax.nn.avg_pool2d" else R.nn.max_pool2d
        t = f(m.tensor, a.pool_size, a.strides, a.padding, a.dilation, bool(a.ceil_mode), bool(a.count_include_pad),
              layout=lay, out_layout=lay)
        return Mapped(bb.emit(t), m.block, m.phys)
    if name == "relax.concat" and isinstance(args[0], relax.Tuple) and value.attrs.axis is not None \
            and int(value.attrs.axis) == 1:
        parts = [form(f) for f in args[0].fields]
        if any(p is None for p in parts):
            return None
        b = max(p.block for p in parts)
        if any(b % p.block for p in parts):
            return None
        parts = [p if p.block == b else reblocked(bb, p, b) for p in parts]
        offs = np.cumsum([0] + [p.c_phys for p in parts[:-1]])
        phys = np.concatenate([p.phys + o for p, o in zip(parts, offs)])
        return Mapped(bb.emit(R.concat([p.tensor for p in parts], axis=1)), parts[0].block, phys)
    return None


def mapped_global_pool(bb, value, kind: str, m: Mapped):
    """A global pool (``layouts.global_pool_kind``) of the tensor ``m`` holds, taken on the physical
    tensor; then its logical channels."""
    return blocked_global_pool(bb, value, kind, m.tensor, m.block, phys=m.phys)


def quantized_map(bb, m: Mapped, block: int, c_phys: int, phys: np.ndarray, scale: float, zero_point: float):
    """The uint8 activations of the tensor ``m`` holds, in NCHW{block}c with ``c_phys`` channels and logical
    channel c at ``phys[c]`` (the others the zero point), in one gather-and-quantize pass: no NCHW
    between, no separate quantize."""
    from tvm import relax, te, tirx  # lazy: heavy (TVM)
    from ..ops.integer import quantize_u8  # the kernels' quant_out epilogue: the same rounding, in the same order

    src = np.zeros(c_phys, np.int32)
    src[phys] = m.phys
    inv = np.zeros(c_phys, np.float32)  # 0 for the empty channels: round(0) + zero point
    inv[phys] = np.float32(1.0 / scale)
    n, _, h, w, b = (int(v) for v in m.tensor.ty.shape)

    q = (tirx.const(1.0, "float32"), tirx.const(zero_point, "float32"))  # the scale is per channel: inv_scale

    def gather_quantize(x, table, inv_scale):
        def f(i, o, y, z, lane):
            c = o * block + lane
            return quantize_u8(x[i, table[c] // b, y, z, table[c] % b] * inv_scale[c], q)
        return te.compute((n, c_phys // block, h, w, block), f, name="gather_quantize")

    return bb.emit_te(gather_quantize, m.tensor, relax.const(src), relax.const(inv), primfunc_name_hint="gather_quantize")
