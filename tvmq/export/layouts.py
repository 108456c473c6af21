"""Layouts of a model export's tensors between tvmq kernels: NCHW <-> the kernels' blocked NCHW{c}c
(and NHWC), a change of block in one transpose, and the blocked twin of layout-agnostic glue."""

from __future__ import annotations

import numpy as np

from .fusion import _op_is, _scalar_const

def _to_layout(bb, x, layout: str, ib: int):
    from tvm import relax  # lazy: heavy (TVM)

    R = relax.op
    n, c, h, w = [int(v) for v in x.ty.shape]
    if layout == "nchw":
        return x
    if layout == "nhwc":
        return bb.emit(R.permute_dims(x, [0, 2, 3, 1]))
    if h == 1 and w == 1:
        return bb.emit(R.reshape(x, [n, c // ib, 1, 1, ib]))
    y = bb.emit(R.reshape(x, [n, c // ib, ib, h, w]))
    return bb.emit(R.permute_dims(y, [0, 1, 3, 4, 2]))


BLOCKED = ("nchwc", "nchwc_vnni", "amx")  # kernel layouts whose data and output are NCHW{block}c


def divides(a: int, b: int) -> bool:
    """One channel block is a multiple of the other: NCHW{a}c -> NCHW{b}c is one transpose (``_reblock``)."""
    return a % b == 0 or b % a == 0


def _reblock(bb, x, ob: int, ib: int):
    """NCHW{ob}c -> NCHW{ib}c (one block a multiple of the other): one transpose, not two."""
    from tvm import relax  # lazy: heavy (TVM)

    R = relax.op
    n, co, h, w, _ = [int(v) for v in x.ty.shape]
    c = co * ob
    if ob % ib == 0:
        y = bb.emit(R.reshape(x, [n, co, h, w, ob // ib, ib]))
        y = bb.emit(R.permute_dims(y, [0, 1, 4, 2, 3, 5]))
    else:
        y = bb.emit(R.reshape(x, [n, c // ib, ib // ob, h, w, ob]))
        y = bb.emit(R.permute_dims(y, [0, 1, 3, 4, 2, 5]))
    return bb.emit(R.reshape(y, [n, c // ib, h, w, ib]))


def in_out_layout(bb, x, blocked: dict, layout: str, ob: int):
    """The NCHW var ``x`` in a kernel's output layout (a fused residual): its blocked twin as it is or
    reblocked where it has one, else a layout change."""
    if layout in BLOCKED and x in blocked:
        xb, b = blocked[x]
        if b == ob:
            return xb
        if divides(b, ob):
            return _reblock(bb, xb, b, ob)
    return _to_layout(bb, x, layout, ob)


def in_layout(bb, y, lay: str, b: int, layout: str, ob: int, c: int):
    """``y`` (any dtype, ``c`` channels) in layout ``lay`` with block ``b``, as ``layout`` with block
    ``ob``: as it is, reblocked in one transpose, or through NCHW."""
    if lay in BLOCKED and layout in BLOCKED and divides(b, ob):
        return y if b == ob else _reblock(bb, y, b, ob)
    if lay == layout and lay not in BLOCKED:
        return y
    return _to_layout(bb, _from_layout(bb, y, lay, c), layout, ob)


def _from_layout(bb, y, layout: str, c: int):
    from tvm import relax  # lazy: heavy (TVM)

    R = relax.op
    if layout == "nchw":
        return y
    if layout == "nhwc":
        return bb.emit(R.permute_dims(y, [0, 3, 1, 2]))
    n, co, h, w, cb = [int(v) for v in y.ty.shape]
    if h == 1 and w == 1:
        return bb.emit(R.reshape(y, [n, c, 1, 1]))
    z = bb.emit(R.permute_dims(y, [0, 1, 4, 2, 3]))
    return bb.emit(R.reshape(z, [n, c, h, w]))


def blocked_max_pool(x, attrs, block: int, kind: str = "max"):
    """An NCHW max (or, with ``kind`` "avg", average) pool's ``attrs`` applied to ``x`` in NCHW{block}c."""
    from tvm import relax  # lazy: heavy (TVM)

    a, lay = attrs, f"NCHW{block}c"
    f = relax.op.nn.max_pool2d if kind == "max" else relax.op.nn.avg_pool2d
    return f(x, a.pool_size, a.strides, a.padding, a.dilation, bool(a.ceil_mode), bool(a.count_include_pad),
             layout=lay, out_layout=lay)


def blocked_twin(bb, value, blocked: dict):
    """Glue that works on NCHWc as well (ReLU, elementwise add, max/average pooling, channel concat) gets
    a blocked twin when its inputs have one: (the twin, its block), or None; the NCHW original stays
    for whoever needs it. ``blocked``: NCHW var -> (the same tensor in NCHW{ob}c, ob)."""
    from tvm import relax  # lazy: heavy (TVM)

    R = relax.op
    if not isinstance(value, relax.Call) or not isinstance(value.op, __import__("tvm").ir.Op):
        return None
    name = value.op.name
    args = value.args
    twin = None
    if name in ("relax.nn.relu", "relax.clip") and args[0] in blocked:
        xb, ob = blocked[args[0]]
        twin = R.nn.relu(xb) if name == "relax.nn.relu" else R.clip(xb, args[1], args[2])
    elif name in ("relax.minimum", "relax.maximum") and (c := _scalar_const(args)) is not None \
            and c[1] in blocked:
        xb, ob = blocked[c[1]]
        twin = getattr(R, name.split(".")[-1])(xb, relax.const(np.float32(c[0])))
        args = [c[1]]
    elif name in ("relax.add", "relax.maximum") and all(a in blocked for a in args):
        (ab, oa), (cb, oc) = blocked[args[0]], blocked[args[1]]
        if oa == oc and [int(v) for v in ab.ty.shape] == [int(v) for v in cb.ty.shape]:
            twin = (R.add if name == "relax.add" else R.maximum)(ab, cb)
    elif name in ("relax.nn.max_pool2d", "relax.nn.avg_pool2d") and args[0] in blocked \
            and str(value.attrs.layout) == "NCHW" and str(value.attrs.out_layout) == "NCHW":
        xb, ob = blocked[args[0]]  # float: an average over padded channels is 0 there too
        twin = blocked_max_pool(xb, value.attrs, ob, "max" if name == "relax.nn.max_pool2d" else "avg")
    elif name == "relax.concat" and isinstance(args[0], relax.Tuple) and value.attrs.axis is not None \
            and int(value.attrs.axis) == 1 and all(f in blocked for f in args[0].fields):
        parts = [blocked[f] for f in args[0].fields]
        if len({ob for _, ob in parts}) == 1:
            twin = R.concat([p for p, _ in parts], axis=1)
            ob = parts[0][1]
    if twin is None:
        return None
    if name != "relax.concat":
        ob = blocked[args[0]][1]
    return bb.emit(twin), ob


def global_pool_kind(value) -> str | None:
    """"mean" or "max" when ``value`` pools a 4-D NCHW tensor over all of H and W (GlobalAveragePool,
    GlobalMaxPool, ReduceMean over H,W, or an unpadded average/max pool whose window is the whole map);
    else None."""
    names = ("relax.mean", "relax.max", "relax.nn.avg_pool2d", "relax.nn.max_pool2d")
    if not any(_op_is(value, n) for n in names) or len(value.args[0].ty.shape) != 4:
        return None
    if _op_is(value, "relax.mean") or _op_is(value, "relax.max"):
        axes = value.attrs.axis
        ok = axes is not None and sorted(int(a) % 4 for a in axes) == [2, 3]
        return value.op.name.split(".")[-1] if ok else None
    if _op_is(value, "relax.nn.avg_pool2d") or _op_is(value, "relax.nn.max_pool2d"):
        a, (h, w) = value.attrs, [int(v) for v in list(value.args[0].ty.shape)[2:]]
        if (str(a.layout), str(a.out_layout)) == ("NCHW", "NCHW") and [int(v) for v in a.pool_size] == [h, w] \
                and not any(int(p) for p in a.padding) and all(int(d) == 1 for d in a.dilation):
            return "mean" if _op_is(value, "relax.nn.avg_pool2d") else "max"
    return None


def blocked_global_pool(bb, value, kind: str, xb, block: int, phys=None):
    """``value`` (a global pool of ``kind`` over the NCHW tensor that ``xb`` holds in NCHW{block}c,
    maybe with padded channels) taken on ``xb``, the channel block innermost and vectorized, then
    reshaped to NCHW (its padded channels sliced off; with ``phys``, a channel map's logical channel c
    taken from channel ``phys[c]``): the layout change of the whole map goes."""
    from tvm import relax  # lazy: heavy (TVM)

    R = relax.op
    x = value.args[0]
    n, c, co = int(x.ty.shape[0]), int(x.ty.shape[1]), int(xb.ty.shape[1])
    op = R.mean if kind == "mean" else R.max
    y = bb.emit(R.reshape(bb.emit(op(xb, axis=[2, 3], keepdims=True)), [n, co * block, 1, 1]))
    if phys is not None:
        y = bb.emit(R.take(y, relax.const(np.asarray(phys, np.int32)), axis=1, mode="clip"))
    elif co * block != c:
        y = bb.emit(R.strided_slice(y, axes=[1], begin=[0], end=[c]))
    keep = not (_op_is(value, "relax.mean") or _op_is(value, "relax.max")) or bool(value.attrs.keepdims)
    return y if keep else bb.emit(R.reshape(y, [n, c]))
