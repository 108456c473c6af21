"""Template ``conv2d_grouped``: applies a config of schedules/conv2d_grouped.json.

Works on the grouped operators (``tvmq.ops.grouped``: float and int8, depthwise or not). The conv
block's loops are n, oo, y, x, oi (spatial) and rc (grouped only), r, s (reduction); y and x are
split into tiles, the loops ordered (``order``), the leading spatial loops fused and parallel, the
kernel window unrolled (``unroll``) and the channel block ``oi`` vectorized.
"""

from __future__ import annotations

from .common import InvalidConfig, block_names, parallel_lead, local_writeback, place_epilogues_and_pad, unroll_window

SPATIAL = {"n", "oo", "oi", "y_o", "y_i", "x_o", "x_i"}

def op_params(cfg: dict) -> dict:
    """The knobs that change the operator's definition: the channel block."""
    return {"cb": cfg["cb"], "padding": "hard"}


def apply(sch, op, cfg: dict, orders: dict):
    """Schedule ``op`` (built with ``op_params(cfg)``) in place."""
    if cfg["order"] not in orders:
        raise InvalidConfig(f"unknown loop order {cfg['order']!r}")
    blocks = block_names(sch)
    conv = sch.get_sblock("conv")
    loops = sch.get_loops(conv)
    if len(loops) == 7:
        n, oo, y, x, oi, r, s = loops
        L = dict(n=n, oo=oo, oi=oi, r=r, s=s)
    else:
        n, oo, y, x, oi, rc, r, s = loops
        L = dict(n=n, oo=oo, oi=oi, rc=rc, r=r, s=s)
    L["y_o"], L["y_i"] = sch.split(y, [None, cfg["tile_oh"]])
    L["x_o"], L["x_i"] = sch.split(x, [None, cfg["tile_ow"]])
    order = [name for name in orders[cfg["order"]] if name in L]
    sch.reorder(*[L[name] for name in order])

    fused, acc_at_loop, first_red = parallel_lead(sch, L, order, SPATIAL, cfg["parallel_depth"])
    last_red = max(i for i, name in enumerate(order) if name not in SPATIAL)
    for name in order[last_red + 1:-1]:  # the register tile (pixels of the tile), vector innermost
        sch.unroll(L[name])
    unroll_window(sch, L, cfg["unroll"])
    sch.vectorize(L[order[-1]])

    writeback = local_writeback(sch, conv, acc_at_loop, unroll_tile=True) if cfg["accumulate"] == "local" else None

    place_epilogues_and_pad(sch, blocks, writeback, cfg["pad"])

    sch.decompose_reduction(conv, L[order[first_red]])
    return sch
