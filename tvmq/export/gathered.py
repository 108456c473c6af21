"""A grouped 1x1 convolution of a float export in one kernel call (``conv2d_float`` with ``gather``).

Each group's outputs are padded to whole output blocks, so one block never spans two groups, and each
block reads its group's input channels through a table (``chan``) from wherever its producer put them:
the input needs no split, no layout change and no shuffle (``channel_maps.py``). The output is a
``Mapped`` form: group g's channel k at g * padded + k. The task, and so its tuning records, is the plain
1x1 convolution of one group's input channels to all padded outputs.
"""

from __future__ import annotations

import re
import sys

import numpy as np

from ..errors import TvmqError
from ..ops import direct as D
from ..ops.float import chan_offsets, largest_divisor
from ..workload import ConvWorkload
from .channel_maps import Mapped, group_padded, identity, in_map, to_logical
from .layouts import _to_layout

BLOCK = 16  # output channels per block: each group's outputs are padded to a multiple


def gathered_shape(call, L) -> tuple[int, int, int] | None:
    """(groups, input channels per group, output channels per group) when ``call`` (NCHW, OIHW) is a
    grouped 1x1, stride 1, unpadded convolution that is not depthwise; else None."""
    a = call.attrs
    g = int(a.groups)
    o, cg, kh, kw = (int(v) for v in L.w.shape)
    if g <= 1 or cg == 1 or (kh, kw) != (1, 1) or str(a.data_layout) != "NCHW" or str(a.kernel_layout) != "OIHW":
        return None
    if any(int(s) != 1 for s in a.strides) or any(int(p) for p in a.padding) or any(int(d) != 1 for d in a.dilation):
        return None
    return g, cg, o // g


def gathered_workload(call, L) -> ConvWorkload | None:
    """The task's workload: one group's input channels to every group's padded outputs."""
    shp = gathered_shape(call, L)
    if shp is None:
        return None
    g, cg, og = shp
    n, _, h, w = (int(v) for v in call.args[0].ty.shape)
    ogp = -(-og // BLOCK) * BLOCK
    return ConvWorkload(re.sub(r"\W", "_", L.node), n, cg, h, w, g * ogp, 1, 1, (1, 1), (0, 0, 0, 0))


def gathered_call(plan, bb, call, L, epi: dict | None):
    """``call`` on one gathered kernel: (NCHW output, whether ``epi`` was fused), or None when it does not
    apply (the per-group path then runs)."""
    from tvm import relax  # lazy: heavy (TVM)

    if plan.opts.quantize != "none" or plan.dry:
        return None
    shp = gathered_shape(call, L)
    if shp is None:
        return None
    g, cg, og = shp
    wl = gathered_workload(call, L)
    ogp = wl.c_out // g
    x = call.args[0]
    m_in = plan.form(x)
    if m_in is None:
        c = int(x.ty.shape[1])
        xb = largest_divisor(c)
        m_in = identity(_to_layout(bb, x, "nchwc", xb), xb, c)
    fuse = {k: epi.get(k) for k in ("bias", "residual", "relu")} if epi else None
    if fuse:
        fuse["quant_out"] = None
    try:
        op, gv, fname, entry = plan.kernel(wl, bb, fuse, None, extra={"gather": m_in.c_phys, "data_block": m_in.block},
                                           fits=lambda p: p["layout"] == "nchwc" and ogp % p["ob"] == 0)
    except TvmqError as e:
        print(f"tvmq export: note: layer {L.node!r}: no gathered kernel ({e}); one call per group", file=sys.stderr)
        return None
    ib, ob = op.params["ib"], op.params["ob"]
    if ogp % ob:
        return None
    phys_out = group_padded(g, og, ogp)
    w = np.zeros((g * ogp, cg, 1, 1), np.float32)
    w[phys_out] = L.quant["weight"]
    chan = m_in.phys[(np.arange(g * ogp // ob) * ob // ogp)[:, None] * cg + np.arange(cg)[None, :]]
    chan = chan_offsets(chan, wl, m_in.block)
    arrays = [("w", D.to_layout_weight(w, "nchwc", ib, ob), "float weights, each group's outputs padded to "
               f"{ogp}"), ("chan", chan, "where each output block's input channels start in the flat data")]
    if fuse and fuse["bias"] is not None:
        b = np.zeros(g * ogp, np.float32)
        b[phys_out] = fuse["bias"]
        arrays.append(("bias", b, "bias (fused epilogue)"))
    args, names = [bb.emit(relax.op.reshape(m_in.tensor, [-1]))], {}  # the kernel reads the data flat
    for key, arr, role in arrays:
        v = plan.new_input(f"{L.safe}_{key}", arr, role, L.node)
        names[key] = v.name
        args.append(v)
    if fuse and fuse["residual"] is not None:
        args.append(in_map(bb, fuse["residual"], plan.form(fuse["residual"]), ob, g * ogp, phys_out))
    return mapped_call(plan, bb, L, op, gv, fname, entry, args, names, wl, g * og, phys_out, fuse, groups=g,
                       input_layout="gathered")


def mapped_call(plan, bb, L, op, gv, fname, entry, args, names, wl, c: int, phys_out, fuse, **row):
    """The kernel called on ``args`` (checked against its arguments), its output a ``Mapped`` form of ``c``
    logical channels at ``phys_out``, and the layer's manifest row (``row``: more fields): (NCHW output,
    whether ``fuse`` was fused)."""
    from tvm import relax  # lazy: heavy (TVM)

    oa = op.out_arg
    got = [[int(v) for v in a.ty.shape] for a in args]
    want = [list(a.shape) for a in op.args[:-1]]
    if got != want:
        raise TvmqError(f"internal: layer {L.node!r}: kernel arguments {got} != {want}")
    y = bb.emit(relax.call_tir(gv, relax.Tuple(args), relax.TensorType(list(oa.shape), oa.dtype)))
    m_out = Mapped(y, op.params["ob"], phys_out)
    out = to_logical(bb, m_out, c)
    plan.mapped[out] = m_out
    fused = {"bias": fuse["bias"] is not None, "relu": fuse["relu"],
             **({"residual": True} if fuse["residual"] is not None else {})} if fuse else None
    plan.layer_rows.append(dict(node=L.node, weight=L.weight, workload=wl.to_dict(), kernel=fname,
                                schedule=entry["schedule"], layout=op.layout,
                                pieces=[dict(kernel=fname, out_channels=[0, c], c_out_padded=wl.c_out,
                                             out_rows=np.asarray(phys_out).tolist(), inputs=names)],
                                fused_epilogue=fused, **row, **L.report))
    return out, bool(fuse)
