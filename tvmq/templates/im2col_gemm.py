"""Template ``im2col_gemm``: applies a config of schedules/im2col_gemm.json."""

from __future__ import annotations

from .common import InvalidConfig, block_names, local_writeback, parallel_lead, parallel_outer, place_epilogues

SPATIAL = {"n", "oo", "oi", "po", "pi"}
EPILOGUES = ("requant", "dequant", "zp_correct")


def op_params(cfg: dict) -> dict:
    return {}


def apply(sch, op, cfg: dict, orders: dict):
    if cfg["order"] not in orders:
        raise InvalidConfig(f"unknown loop order {cfg['order']!r}")
    blocks = block_names(sch)
    conv = sch.get_sblock("conv")
    n, o, y, x, c, r, s = sch.get_loops(conv)
    p, k = sch.fuse(y, x), sch.fuse(c, r, s)
    L = dict(n=n)
    L["oo"], L["oi"] = sch.split(o, [None, cfg["tile_o"]])
    L["po"], L["pi"] = sch.split(p, [None, cfg["tile_p"]])
    L["ko"], L["ki"] = sch.split(k, [None, cfg["tile_k"]])
    order = orders[cfg["order"]]
    sch.reorder(*[L[x] for x in order])
    _, acc_loop, first_red = parallel_lead(sch, L, order, SPATIAL, cfg["parallel_depth"])
    sch.unroll(L["oi"])
    if cfg["unroll_k"]:
        sch.unroll(L["ki"])
    sch.vectorize(L["pi"])
    writeback = local_writeback(sch, conv, acc_loop) if cfg["accumulate"] == "local" else None
    place_epilogues(sch, [b for b in EPILOGUES if b in blocks], writeback, 2)
    col = sch.get_sblock("im2col")
    cl = sch.get_loops(col)
    sch.fuse(cl[-2], cl[-1])
    parallel_outer(sch, col, 2)
    if "decode" in blocks:
        dec = sch.get_sblock("decode")
        if cfg.get("decode_at", "inline") == "inline":
            sch.compute_inline(dec)
        else:
            parallel_outer(sch, dec, 1)
    sch.decompose_reduction(conv, L[order[first_red]])
    return sch
