"""A grouped 1x1 convolution of an integer export (int8, kmeans_int8) in one kernel call (``group_read``).

The VNNI kernel reads four consecutive input channels as one operand, so the float export's per-channel
table (``gathered.py``) does not fit it. Here each group's input channels sit at an affine place in the
data instead: group g's channel c at data channel ``base + g * stride + c`` (``direct.check_group_read``).
The output of a grouped kernel (each group padded to whole 16-channel blocks, ``channel_maps.group_padded``)
already has that form, so the next grouped conv of a residual unit reads it as it is; a channel shuffle's
output does not, and is packed first (group g's channels at g * its padded width), quantized in the same
pass (``channel_maps.quantized_map``). Otherwise the input is quantized on its blocked form (one
elementwise pass; no layout change). The output is a float
``Mapped`` form, as in the float export. The task, and so its tuning records, is the plain 1x1 int8 (or
codebook int8) convolution of one group's input channels, padded to a multiple of 4, to all padded outputs.
"""

from __future__ import annotations

import re
import sys
from types import SimpleNamespace

import numpy as np

from ..errors import TvmqError
from ..ops.float import largest_divisor
from ..workload import ConvWorkload
from .channel_maps import Mapped, group_padded, identity, in_map, quantized_map
from .gathered import BLOCK, gathered_shape, mapped_call
from .kernel_args import layer_inputs
from .layouts import _to_layout
from .requant import channel_scales, quantize

QUANTIZE = ("int8", "kmeans_int8")
LANES = 4  # input channels per VNNI operand: each group's reduction is padded to a multiple


def grouped_read_workload(call, L) -> ConvWorkload | None:
    """The task's workload: one group's input channels (padded to ``LANES``) to every group's padded
    outputs."""
    shp = gathered_shape(call, L)
    if shp is None:
        return None
    g, cg, og = shp
    n, _, h, w = (int(v) for v in call.args[0].ty.shape)
    return ConvWorkload(re.sub(r"\W", "_", L.node), n, -(-cg // LANES) * LANES, h, w, g * (-(-og // BLOCK) * BLOCK),
                        1, 1, (1, 1), (0, 0, 0, 0))


def affine_groups(m: Mapped, g: int, cg: int, cgp: int, holes: bool) -> tuple[int, int] | None:
    """(base, stride) when group k's logical channels c of ``m`` sit at ``base + k * stride + c``, both
    multiples of ``LANES``, every group's ``cgp`` channels inside the tensor (and with ``holes``, its
    padding channels holding no logical channel); else None."""
    p = np.asarray(m.phys).reshape(g, cg)
    base = int(p[0, 0])
    stride = int(p[1, 0] - base) if g > 1 else cgp
    if base % LANES or stride % LANES or m.block % LANES or stride < cg:
        return None
    if not np.array_equal(p, base + stride * np.arange(g)[:, None] + np.arange(cg)[None, :]):
        return None
    if base + (g - 1) * stride + cgp > m.c_phys:
        return None
    if holes and cgp > cg:
        pad = (base + stride * np.arange(g)[:, None] + np.arange(cg, cgp)[None, :]).reshape(-1)
        if np.isin(pad, m.phys).any():
            return None
    return base, stride


def _input(plan, bb, x, L, g: int, cg: int, cgp: int):
    """(uint8 NCHW{block}c tensor, block, base, stride, channels, whether it was packed) of the conv's input
    for a group read."""
    m = plan.form(x)
    if m is None:
        c = int(x.ty.shape[1])
        xb = largest_divisor(c)
        m = identity(_to_layout(bb, x, "nchwc", xb), xb, c)
    # kmeans_int8's padded input channels have codebook weights: they must read the zero point (a hole)
    at = affine_groups(m, g, cg, cgp, holes=plan.opts.quantize == "kmeans_int8")
    if at is None:  # a shuffle's output: each group's channels packed at g * cgp, quantized on the way
        phys = group_padded(g, cg, cgp)
        block = max(b for b in (16, 8, 4) if (g * cgp) % b == 0)
        data = quantized_map(bb, m, block, g * cgp, phys, L.act["scale"], L.act["zero_point"])
        return data, block, 0, cgp, g * cgp, True
    return quantize(bb, m.tensor, L.act["scale"], L.act["zero_point"]), m.block, at[0], at[1], m.c_phys, False


def _padded_quant(L, q: str, g: int, cg: int, cgp: int, phys_out: np.ndarray, c_out: int) -> dict:
    """The layer's quantized arrays with each group's outputs at ``phys_out`` and its input channels
    padded to ``cgp`` (zero weights, zero scales: padded outputs are 0)."""
    key = "q" if q == "int8" else "indices"
    src = np.asarray(L.quant[key])
    w = np.zeros((c_out, cgp, *src.shape[2:]), src.dtype)
    w[phys_out, :cg] = src
    o = src.shape[0]
    ws = np.zeros(c_out, np.float32)
    ws[phys_out] = channel_scales(L.quant["w_scale"], o)
    return {key: w, "w_scale": ws, **({"codebook": L.quant["codebook"]} if q != "int8" else {})}


def grouped_read_call(plan, bb, call, L, epi: dict | None):
    """``call`` on one group-read kernel: (NCHW output, whether ``epi`` was fused), or None when it does not
    apply (the per-group path then runs)."""
    q = plan.opts.quantize
    if q not in QUANTIZE or plan.dry or not L.act:
        return None
    shp = gathered_shape(call, L)
    if shp is None:
        return None
    g, cg, og = shp
    wl = grouped_read_workload(call, L)
    cgp, ogp = wl.c_in, wl.c_out // g
    x = call.args[0]
    data, xb, base, stride, chans, packed = _input(plan, bb, x, L, g, cg, cgp)
    fuse = {k: epi.get(k) for k in ("bias", "residual", "relu")} if epi else None
    if fuse:
        fuse["quant_out"] = None
    read = (g, base, stride, chans)

    def fits(p):
        return p["layout"].startswith("nchwc") and not ogp % p["ob"] and not (base % p["ib"] or stride % p["ib"]
                                                                            or xb % p["ib"] or cgp % p["ib"])
    try:
        op, gv, fname, entry = plan.kernel(wl, bb, fuse, None, extra={"group_read": read, "data_block": xb},
                                           fits=fits)
    except TvmqError as e:
        print(f"tvmq export: note: layer {L.node!r}: no group-read kernel ({e}); one call per group", file=sys.stderr)
        return None
    ob = op.params["ob"]
    phys_out = group_padded(g, og, ogp)
    L2 = SimpleNamespace(quant=_padded_quant(L, q, g, cg, cgp, phys_out, wl.c_out), act=L.act)
    fuse2 = None
    if fuse:
        b = None
        if fuse["bias"] is not None:
            b = np.zeros(wl.c_out, np.float32)
            b[phys_out] = fuse["bias"]
        fuse2 = {**fuse, "bias": b}
    args, names = [data], {}
    for key, arr, role in layer_inputs(q, plan.opts.bits, op, L2, 0, wl.c_out, wl.c_out, fuse2):
        if arr is None:  # the fused residual (float), in the output's map
            args.append(in_map(bb, fuse["residual"], plan.form(fuse["residual"]), ob, wl.c_out, phys_out))
            continue
        v = plan.new_input(f"{L.safe}_{key}", arr, role + (f", each group's outputs padded to {ogp}" if key in
                                                               ("q", "idx") else ""), L.node)
        names[key] = v.name
        args.append(v)
    return mapped_call(plan, bb, L, op, gv, fname, entry, args, names, wl, g * og, phys_out, fuse, groups=g,
                       input_layout=("packed, " if packed else "") + f"group read (base {base}, stride {stride})",
                       activation=L.act)
