"""Channel blocks chosen with the neighbours: a kernel of a model export may take a tuned config a
little slower than its best when that config reads its input in the block the previous kernel
wrote (and its fused residual in the block that tensor is in), so the layout change between them
goes away. Each candidate is scored as its measured time plus the layout changes it needs.

The choice is greedy in graph order: the producer's block is fixed when its consumer chooses.
Candidates are the records the best one was chosen from (same machine kind and target: ``Choice.pool``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..record.log import median_time
from ..templates import template_module
from .layouts import BLOCKED

# Bytes a layout change reads plus writes per second: ResNet-50 float on AMD Zen 5 (2 threads,
# `tvmq bench --export --breakdown`) spent 1.45 ms in 47 layout changes of about 61 MB.
REBLOCK_BYTES_PER_S = 42e9


def reblock_s(nbytes: int) -> float:
    """Estimated seconds of one layout change of a tensor of ``nbytes`` (read once, written once)."""
    return 2.0 * nbytes / REBLOCK_BYTES_PER_S


@dataclass(frozen=True)
class Want:
    """The blocks the neighbours hold: the input's (``ib``, with its bytes) and the fused residual's
    (``ob``, with its bytes); None where there is no blocked tensor to keep."""

    ib: int | None = None
    in_bytes: int = 0
    ob: int | None = None
    res_bytes: int = 0

    def cost_s(self, params: dict) -> float:
        """Seconds of the layout changes a kernel with operator ``params`` (layout, ib, ob) needs."""
        if params.get("layout") not in BLOCKED:
            return 0.0
        s = 0.0
        if self.ib is not None and params.get("ib") != self.ib:
            s += reblock_s(self.in_bytes)
        if self.ob is not None and params.get("ob") != self.ob:
            s += reblock_s(self.res_bytes)
        return s


def pick(task, choice, want: Want | None):
    """(record, note): the record of ``choice.pool`` with the least time plus layout changes; the best
    record itself (and note None) when nothing is wanted or it wins anyway."""
    best = choice.record
    if best is None or want is None or (want.ib is None and want.ob is None) or len(choice.pool) < 2:
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
