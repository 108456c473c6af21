"""Channel blocks chosen with the neighbours. A direct kernel reads its input in the block the previous
kernel wrote whenever one block divides the other (``data_block``: the operator indexes that block;
its reduction keeps the tuned ``ib``), so no layout change runs between them. For what remains (a
fused residual in another block, a plain or AMX layout), a kernel may take a tuned config a little
slower than its best; each candidate is scored as its measured time plus the layout changes it needs.

The choice is greedy in graph order: the producer's block is fixed when its consumer chooses.
Candidates are the records the best one was chosen from (same machine kind and target: ``Choice.pool``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..record.log import median_time
from ..templates import template_module
from .layouts import BLOCKED, divides

# Bytes a layout change reads plus writes per second, AMD Zen 5, 2 threads (`tvmq bench --export
# --breakdown`): a reblock where one block divides the other is one transpose (ResNet-50 float: 1.45 ms
# in 47 of them, about 61 MB); other blocks go through NCHW, a transpose-reshape-transpose that Relax
# fuses into one gather with div/mod indices (MobileNet-v2 float: 0.2-0.8 ms for 1.6-4.8 MB tensors).
REBLOCK_BYTES_PER_S = 42e9
CONVERT_BYTES_PER_S = 12e9


def reblock_s(nbytes: int, divides: bool = True) -> float:
    """Estimated seconds of one layout change of a tensor of ``nbytes`` (read once, written once);
    ``divides``: one block is a multiple of the other (a single transpose)."""
    return 2.0 * nbytes / (REBLOCK_BYTES_PER_S if divides else CONVERT_BYTES_PER_S)


READS_ANY_BLOCK = ("nchwc", "nchwc_vnni")  # layouts whose operators take ``data_block``


def data_block(params: dict, xb: int | None, c_in: int) -> int | None:
    """The ``data_block`` override for a kernel with operator ``params`` whose input is kept in
    NCHW{xb}c: ``xb`` where the kernel can read it as it is and ``ib`` differs, else None."""
    ib = params.get("ib")
    if xb is None or xb == ib or params.get("layout") not in READS_ANY_BLOCK or c_in % xb or not divides(xb, ib):
        return None
    return xb


@dataclass(frozen=True)
class Want:
    """The blocks the neighbours hold: the input's (``ib``, with its bytes) and the fused residual's
    (``ob``, with its bytes), None where there is no blocked tensor to keep; ``out_bytes``: the output's
    size (a kernel that writes a plain layout makes its blocked readers convert it)."""

    ib: int | None = None
    in_bytes: int = 0
    ob: int | None = None
    res_bytes: int = 0
    out_bytes: int = 0

    def cost_s(self, params: dict) -> float:
        """Seconds of the layout changes a kernel with operator ``params`` (layout, ib, ob) needs."""
        if params.get("layout") not in BLOCKED:  # NCHW or NHWC: blocked inputs and readers all convert
            return (reblock_s(self.in_bytes, False) if self.ib is not None else 0.0) + \
                (reblock_s(self.res_bytes, False) if self.ob is not None else 0.0) + reblock_s(self.out_bytes, False)
        s, ib, ob = 0.0, params.get("ib"), params.get("ob")
        reads_it = params.get("layout") in READS_ANY_BLOCK and ib is not None and divides(ib, self.ib or ib)
        if self.ib is not None and ib != self.ib and not reads_it:
            s += reblock_s(self.in_bytes, ib is not None and divides(ib, self.ib))
        if self.ob is not None and ob != self.ob:
            s += reblock_s(self.res_bytes, ob is not None and divides(ob, self.ob))
        return s


def pick(task, choice, want: Want | None):
    """(record, note): the record of ``choice.pool`` with the least time plus layout changes; the best
    record itself (and note None) when nothing is wanted or it wins anyway."""
    best = choice.record
    if best is None or want is None or len(choice.pool) < 2:
        return best, None
    tmpl = template_module(task.template)
    space = task.space()

    def score(rec):
        cfg = space.complete(rec["config"])
        return median_time(rec) + want.cost_s(tmpl.op_params(cfg))

    base = score(best)
    seen, win, win_s = set(), best, base
    for rec in sorted(choice.pool, key=median_time):
        if median_time(rec) >= win_s:  # sorted by time: nothing later can win
            break
        key = repr(sorted(rec["config"].items()))
        if key in seen or rec.get("tuner") == "metaschedule":
            continue
        seen.add(key)
        cfg = space.complete(rec["config"])
        if choice.source != "this machine" and not space.is_valid(cfg):
            continue
        s = median_time(rec) + want.cost_s(tmpl.op_params(cfg))
        if s < win_s:
            win, win_s = rec, s
    if win is best:
        return best, None
    p = tmpl.op_params(space.complete(win["config"]))
    return win, (f"config {median_time(win) * 1e3:.3f} ms instead of the best {median_time(best) * 1e3:.3f} ms: it reads "
                 f"{p.get('ib')}c and writes {p.get('ob')}c, saving about {(base - win_s) * 1e3:.3f} ms of layout "
                 "changes (estimated)")


def best_fitting(task, choice, fits):
    """The fastest record of ``choice.pool`` whose operator parameters satisfy ``fits`` (a kernel that
    takes only some layouts or blocks: a gathered conv), or None (the space's default then)."""
    tmpl = template_module(task.template)
    space = task.space()
    for rec in sorted(choice.pool, key=median_time):
        if rec.get("tuner") == "metaschedule":
            continue
        cfg = space.complete(rec["config"])
        if (choice.source == "this machine" or space.is_valid(cfg)) and fits(tmpl.op_params(cfg)):
            return rec
    return None
