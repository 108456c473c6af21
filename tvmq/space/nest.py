"""What a direct-convolution config makes of the loop nest, computed from the config alone (cheap enough
to score thousands of candidates): the cost model's features and the performance model's thread balance."""

from __future__ import annotations

import math


def _log2(v):
    return math.log2(v) if v and v > 0 else -1.0


# (fp32 lanes, vector registers) when the machine is not known: AVX-512's, which most logs were measured on
ZMM = (16, 32)


def loop_features(cfg: dict, ctx: dict, threads: int = 2, vector: tuple[int, int] | None = None) -> list[float]:
    """The loop nest a direct-conv config produces on a machine whose vectors are ``vector`` (fp32 lanes,
    registers; default AVX-512's), computed from the config (cheap enough to score thousands of candidates,
    unlike lowering each one): accumulator vectors and whether they spill (more than the registers less 3
    for operands), parallel iterations and the idle share of the last round over ``threads``, bytes of
    weights / input one reduction step touches, the vectorized extent and whether it fills whole vectors,
    and the share of the registers the accumulators take.

    Counting in the machine's own vectors lets a model trained on AVX-512 machines' records rank tiles for
    AVX2's 16 registers of 8 lanes: a tile of 26 zmm fits there, of 26 ymm spills here."""
    lanes_m, regs_m = vector or ZMM
    oh, ow, ob, ib = cfg.get("tile_oh", 1), cfg.get("tile_ow", 1), cfg.get("ob", cfg.get("tile_o", 1)), cfg.get("ib", 1)
    kh, kw = ctx.get("kh", 1), ctx.get("kw", 1)
    regs = oh * ow * max(ob, 1) * cfg.get("tile_p", 1) / lanes_m
    outer = {"n": ctx.get("n", 1), "oo": max(1, ctx.get("c_out", 1) // max(ob, 1)),
             "y_o": max(1, ctx.get("out_h", 1) // oh), "x_o": max(1, ctx.get("out_w", 1) // ow)}
    lead = ["n", "oo", "y_o", "x_o"] if cfg.get("order") != "ic_outer" else ["n", "oo"]
    par = math.prod(outer[k] for k in lead[: cfg.get("parallel_depth", 1)])
    idle = (math.ceil(par / threads) * threads - par) / (math.ceil(par / threads) * threads)
    w_bytes = ob * ib * kh * kw * 4
    in_bytes = ib * (oh + kh - 1) * (ow + kw - 1) * 4
    lanes = ob if cfg.get("vector", "oi") == "oi" else ow
    return [_log2(regs), float(regs > regs_m - 3), _log2(par), idle, _log2(w_bytes), _log2(in_bytes), _log2(lanes),
            float(lanes % lanes_m == 0), regs / regs_m]
