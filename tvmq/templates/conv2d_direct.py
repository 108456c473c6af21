"""Template ``conv2d_direct``: applies a config of schedules/conv2d_direct.json.

Works on every direct variant (float, codebook, int8/int16/int4) and layout:
the convolution's loops are named n, oo, oi, y, x (spatial) and ico, ici,
r, s (reduction) whatever the layout, then split, ordered, and annotated.
"""

from __future__ import annotations

from .intrinsics import DOTS  # tensorized 16x4 int8 dot products
from .common import (InvalidConfig, block_names, lead_names, local_writeback, parallel_lead, parallel_outer,
                     place_epilogues_and_pad, unroll_window, vectorize_lanes)

OP_KNOBS = ("layout", "ib", "ob", "pad")
SPATIAL = {"n", "oo", "oi", "y_o", "y_i", "x_o", "x_i"}


def amx_tiles(cfg: dict) -> tuple | None:
    """(rows, m_tiles, n_tiles, flat) when ``dot`` is an AMX value, else None: ``amx_MxN`` has tiles of
    ``tile_ow`` pixels within an output row, ``amxf_MxN`` 16-pixel tiles on the flat padded grid."""
    dot = cfg.get("dot") or ""
    if not dot.startswith("amx"):
        return None
    kind, mn = dot.split("_")
    m, n = mn.split("x")
    flat = kind == "amxf"
    return (16 if flat else cfg["tile_ow"]), int(m), int(n), int(flat)


def op_params(cfg: dict) -> dict:
    """The knobs that change the operator's definition (layout, blocks) rather than its schedule."""
    tiles = amx_tiles(cfg)
    if tiles:  # the AMX kernel is written in TIR with its tiling built in (tvmq.templates.amx)
        return {"layout": "amx", "ib": 64, "ob": 16, "padding": "hard", "tiles": list(tiles)}
    layout = "nchwc_vnni" if cfg.get("dot") in DOTS else cfg["layout"]
    return {"layout": layout, "ib": cfg["ib"], "ob": cfg["ob"], "padding": "hard"}


def _named_loops(sch, conv, layout, ib, ob):
    loops = sch.get_loops(conv)
    if layout.startswith("nchwc"):
        n, oo, y, x, oi, ico, r, s, ici = loops
    else:
        if layout == "nchw":
            n, o, y, x, c, r, s = loops
        else:
            n, y, x, o, r, s, c = loops
        oo, oi = sch.split(o, [None, ob])
        ico, ici = sch.split(c, [None, ib])
    return dict(n=n, oo=oo, oi=oi, y=y, x=x, ico=ico, ici=ici, r=r, s=s)


def _fuse_inner_weight_block(sch, block, vnni: bool):
    """The innermost loop of a weight stage; in the VNNI layout its (16 o, 4 i) block fused into one
    64-element loop, so it vectorizes as one 64-byte operand."""
    loops = sch.get_loops(block)
    return sch.fuse(*loops[-2:]) if vnni and len(loops) >= 2 else loops[-1]


def apply(sch, op, cfg: dict, orders: dict):
    """Schedule ``op`` (already built with ``op_params(cfg)``) in place."""
    if cfg["order"] not in orders:
        raise InvalidConfig(f"unknown loop order {cfg['order']!r}")
    if amx_tiles(cfg):
        return sch  # nothing to schedule: see op_params
    blocks = block_names(sch)
    conv = sch.get_sblock("conv")
    vnni = cfg.get("dot") in DOTS
    L = _named_loops(sch, conv, op_params(cfg)["layout"], cfg["ib"], cfg["ob"])
    L["y_o"], L["y_i"] = sch.split(L.pop("y"), [None, cfg["tile_oh"]])
    L["x_o"], L["x_i"] = sch.split(L.pop("x"), [None, cfg["tile_ow"]])
    order = list(orders[cfg["order"]])
    if cfg["vector"] == "x_i":
        order.remove("x_i")
        order.append("x_i")
    if vnni:  # the 16x4 dot product is the innermost (oi, ici) pair, tensorized below
        order.remove("ici")
    sch.reorder(*[L[n] for n in order + (["ici"] if vnni else [])])

    fused, acc_at_loop, first_red = parallel_lead(sch, L, order, SPATIAL, cfg["parallel_depth"])
    if cfg["auto_unroll"]:
        sch.annotate(fused, "pragma_auto_unroll_max_step", cfg["auto_unroll"])
        sch.annotate(fused, "pragma_unroll_explicit", 1)

    # Register tile: loops after the last reduction loop, vector innermost.
    last_red = max(i for i, n in enumerate(order) if n not in SPATIAL)
    for name in order[last_red + 1:-1]:
        sch.unroll(L[name])
    unroll_window(sch, L, cfg["unroll"])
    if not vnni:
        sch.vectorize(L[order[-1]])

    writeback = local_writeback(sch, conv, acc_at_loop) if cfg["accumulate"] == "local" else None

    place_epilogues_and_pad(sch, blocks, writeback, cfg["pad"])

    if "decode" in blocks:
        where = cfg.get("decode_at", "inline")
        dec = sch.get_sblock("decode")
        # Lookup vectors: 16 float32 lanes (one zmm permute), or 64 int8 ones for integer tables.
        lanes = 64 if next(a.dtype for a in op.args if a.name == "codebook") == "int8" else 16
        if where == "inline":
            sch.compute_inline(dec)
        elif where == "root":
            _fuse_inner_weight_block(sch, dec, vnni)
            parallel_outer(sch, dec, 2, max_vec=lanes)
        else:
            # A loop fused into the parallel loop is gone: decode once per parallel iteration.
            fused_away = where in lead_names(order, SPATIAL, cfg["parallel_depth"])
            sch.compute_at(dec, fused if fused_away else L[where])
            vectorize_lanes(sch, _fuse_inner_weight_block(sch, dec, vnni), lanes)

    sch.decompose_reduction(conv, L[order[first_red]])
    if vnni:
        from .intrinsics import dot_16x4, register  # registers TVM tensor intrinsics: only for dot-product configs

        register()
        sch.tensorize(L["oi"], dot_16x4(cfg["dot"], "local" if writeback is not None else "global"))
    return sch
