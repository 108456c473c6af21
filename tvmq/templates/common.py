"""Schedule steps shared by the templates."""

from __future__ import annotations

from ..errors import TvmqError
import re


class InvalidConfig(TvmqError):
    """A config the template cannot apply; rejected before anything is built."""


KNOWN_BLOCKS = ("pad", "decode", "im2col", "conv", "epilogue", "requant", "dequant", "zp_correct")


def block_names(sch) -> list[str]:
    """Which of the operators' known block names exist in ``main``."""

    script = sch.mod["main"].script()
    found = set(re.findall(r'T\.sblock\("([A-Za-z_0-9]+)"', script))
    return [b for b in KNOWN_BLOCKS if b in found]


def parallel_outer(sch, block, depth: int, vector: bool = True, max_vec: int = 64):
    """Fuse up to ``depth`` outer loops of ``block`` and parallelize; vectorize its innermost loop."""
    loops = sch.get_loops(block)
    if vector and len(loops) > depth:
        ext = _extent(sch, loops[-1])
        if ext is not None and ext > max_vec:
            # Vectorize a max_vec-wide (else 16-wide) inner part of a long innermost loop.
            width = max_vec if ext % max_vec == 0 else 16
            loops = [*loops[:-1], *sch.split(loops[-1], [None, width])]
            ext = width
        if ext is not None and ext > 1:
            sch.vectorize(loops[-1])
    fused = sch.fuse(*loops[: max(1, min(depth, len(loops) - (1 if vector else 0)))]) if len(loops) > 1 else loops[0]
    sch.parallel(fused)
    return fused


def vectorize_lanes(sch, loop, lanes: int):
    """Vectorize ``loop``; one longer than ``lanes`` (and a multiple of it) is split first and its
    outer part unrolled, so the vectors are ``lanes`` wide (a 16-lane codebook lookup becomes one
    register permute, see ``tvmq.build.lower``)."""
    ext = _extent(sch, loop)
    if ext is not None and ext > lanes and ext % lanes == 0:
        outer, loop = sch.split(loop, [None, lanes])
        sch.unroll(outer)
    sch.vectorize(loop)


def _extent(sch, loop):
    ext = sch.get(loop).extent
    try:
        return int(ext)
    except TypeError:
        return None


def place_epilogues(sch, epilogues: list[str], fused_into: str | None, depth: int):
    """Inline elementwise epilogues into the write-back block, or parallelize them in place."""
    for name in epilogues:
        blk = sch.get_sblock(name)
        if fused_into is not None:
            sch.reverse_compute_inline(blk)
        else:
            parallel_outer(sch, blk, depth)


DIRECT_EPILOGUES = ("epilogue", "requant", "dequant", "zp_correct")  # the direct and grouped ops' stages


def place_epilogues_and_pad(sch, blocks, writeback, pad: str):
    """The direct and grouped templates' last stages: their epilogues into the write-back block (or
    parallel in place), and the pad stage inlined (``pad="inline"``: soft padding) or parallel."""
    place_epilogues(sch, [b for b in DIRECT_EPILOGUES if b in blocks], writeback, 2)
    if "pad" in blocks:
        if pad == "inline":
            sch.compute_inline(sch.get_sblock("pad"))
        else:
            parallel_outer(sch, sch.get_sblock("pad"), 2)


def unroll_window(sch, loops: dict, unroll: str):
    """Fully unroll the kernel width (``unroll="s"``) or both kernel loops (``"rs"``)."""
    if unroll in ("s", "rs"):
        sch.unroll(loops["s"])
    if unroll == "rs":
        sch.unroll(loops["r"])


def local_writeback(sch, conv, at_loop, unroll_tile: bool = False):
    """Accumulate ``conv`` in a local buffer written back (vectorized) under ``at_loop``; the write-back
    block. ``unroll_tile``: also unroll its tile loops, so constant indices keep the accumulators in
    registers."""
    wb = sch.cache_write(conv, 0, "local")
    sch.reverse_compute_at(wb, at_loop)
    loops = sch.get_loops(wb)
    if unroll_tile:
        at = next(i for i, lp in enumerate(loops) if sch.get(lp).same_as(sch.get(at_loop)))
        for lp in loops[at + 1:-1]:
            sch.unroll(lp)
    sch.vectorize(loops[-1])
    return wb


def lead_names(order: list[str], spatial: set, depth: int) -> list[str]:
    """The leading spatial loops of ``order`` (at most ``depth``) that ``parallel_lead`` fuses."""
    lead = []
    for name in order:
        if name not in spatial or len(lead) >= depth:
            break
        lead.append(name)
    return lead


def parallel_lead(sch, loops: dict, order: list[str], spatial: set, depth: int):
    """Fuse up to ``depth`` leading spatial loops of ``order`` into one parallel loop.

    Returns (the parallel loop, the loop the accumulator belongs under: the innermost spatial
    loop enclosing every reduction loop, and the index of the first reduction loop in ``order``).
    """
    lead = lead_names(order, spatial, depth)
    first_red = next(i for i, n in enumerate(order) if n not in spatial)
    fused = sch.fuse(*[loops[n] for n in lead]) if len(lead) > 1 else loops[lead[0]]
    sch.parallel(fused)
    acc_at = order[first_red - 1]
    return fused, (fused if acc_at in lead else loops[acc_at]), first_red
