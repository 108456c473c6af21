"""Which record builds a task's kernel: honest apply-best.

A record counts only for the machine kind that measured it. Records of other machines are
used only when asked (``transfer``): then the most similar machine's best record whose
config is valid in this target's space, named in the choice's note. Emulated times never
choose a schedule for a real board.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from ..machine import Machine, fingerprint, record_kind, record_machine, similarity
from ..variants import siblings
from ..workload import ConvWorkload
from .log import by_config, median_time, ranked

THIS_MACHINE, TRANSFER, NONE = "this machine", "transfer", "none"


@dataclass(frozen=True)
class Choice:
    """The record a kernel is built from (None: the default schedule), where it came from, and why."""

    record: dict | None
    source: str  # THIS_MACHINE, TRANSFER or NONE
    note: str = ""
    # the records ``record`` was the fastest of (same machine kind, target and threads): the alternatives a
    # model export may take instead, to keep its neighbours' layouts (export/joint_layouts.py)
    pool: tuple = field(default=(), compare=False, repr=False)

    @property
    def from_kind(self) -> str | None:
        return record_kind(self.record) if self.record is not None else None


class RecordSet(list):
    """Records plus the policy for using them: ``transfer`` allows other machines' records (with a warning);
    ``cold`` prefers records timed with cold weights (``flush_cache``: a model's kernels) or hot ones (layers)."""

    def __init__(self, records=(), transfer: bool = False, cold: bool = False):
        super().__init__(records)
        self.transfer = transfer
        self.cold = cold


def is_cold(r: dict) -> bool:
    """Timed with cold weights (``MeasureSettings.flush_cache``)."""
    return bool((r.get("settings") or {}).get("flush_cache"))


def _same_warmth(recs: list[dict], cold: bool) -> list[dict]:
    """The records timed as ``cold`` asks, where there are any (a cold time and a hot one do not compare)."""
    return [r for r in recs if is_cold(r) == cold] or recs


def _same_task(r: dict, task) -> bool:
    return (r.get("status") == "ok" and r.get("workload_key") == task.workload.key and r.get("variant") == task.variant
            and r.get("params", {}) == task.params)


def _same_target(r: dict, task) -> bool:
    return json.dumps(r.get("target"), sort_keys=True) == task.target.json


def _fits(r: dict, space) -> bool:
    """The record's config, completed for this space, is one of its valid configs (MetaSchedule's never are)."""
    if r.get("tuner") == "metaschedule":
        return False
    return space.is_valid(space.complete(r["config"]))


def choose(task, records: list[dict], machine: Machine, threads: int | None = None, transfer: bool = False,
           tuner: str | None = None, cold: bool | None = None) -> Choice:
    """The best record of ``task`` for ``machine`` (at ``threads`` when given), optionally from one tuner;
    among cold-weight records where ``cold`` (else hot ones) when the pool has both (default: the
    ``RecordSet``'s policy)."""
    cold = getattr(records, "cold", False) if cold is None else cold
    cands = [r for r in records if _same_task(r, task) and (tuner is None or r.get("tuner") == tuner)
             and not r.get("modelled")]  # a model's estimates rank candidates, they never choose one
    if not machine.emulated:  # emulated times never choose a schedule for a real machine or board
        cands = [r for r in cands if not r.get("emulated")]
    mine = [r for r in cands if record_kind(r) == machine.kind and _same_target(r, task)]
    if mine:
        same_threads = [r for r in mine if threads is None or r.get("threads") == threads]
        pool = _same_warmth(same_threads or mine, cold)
        failed = [r for r in records if r.get("retime") and r.get("status") != "ok" and record_kind(r) == machine.kind
                  and r.get("workload_key") == task.workload.key and r.get("variant") == task.variant]
        pool = ranked(pool + failed) or by_config(pool)  # a config measured again: its median, and ahead
        rec = pool[0]
        note = "" if same_threads else (f"{task.workload.name} {task.variant}: record measured here at "
                                        f"{rec.get('threads')} threads, used for {threads}")
        return Choice(rec, THIS_MACHINE, note, tuple(pool))
    label = f"{task.workload.name} {task.variant} on target {task.target.name} (machine {machine.kind})"
    others = [r for r in cands if not (record_kind(r) == machine.kind and _same_target(r, task))]
    if not others:
        return Choice(None, NONE, f"no tuning record for {label}; using the default schedule")
    kinds = sorted({record_kind(r) if record_kind(r) != machine.kind else f"{machine.kind} for another target"
                    for r in others})
    if not transfer:
        return Choice(None, NONE, f"no record measured on this machine for {label} (records exist from {kinds}); "
                                  "using the default schedule: add --transfer to start from theirs, or tune here")
    space = task.space()
    valid = [r for r in others if _fits(r, space)]
    if not valid:
        return Choice(None, NONE, f"records for {label} exist from {kinds}, but none has a config valid in this "
                                  "target's space; using the default schedule")
    by_kind: dict[str, list[dict]] = {}
    for r in valid:
        by_kind.setdefault(record_kind(r), []).append(r)
    # Most similar machine first; among equals, the one with the fastest record.
    kind = max(by_kind, key=lambda k: (similarity(machine, record_machine(by_kind[k][0])),
                                       -min(median_time(r) for r in by_kind[k])))
    by_kind[kind] = _same_warmth(by_kind[kind], cold)
    rec = min(by_kind[kind], key=median_time)
    sim = similarity(machine, record_machine(rec))
    return Choice(rec, TRANSFER, f"{label}: using the record measured on {kind} (similarity {sim:.2f}), not on "
                                 "this machine; rebuilt and verified here, its time is not this machine's",
                  tuple(by_kind[kind]))


def transfer_seeds(task, records: list[dict], machine: Machine, n: int = 8, similar_workloads: int = 3,
                   per_workload: int = 4) -> list[dict]:
    """Configs to measure first on a machine with no records of ``task``, at most ``n``: this machine's best
    of this layer in a sibling variant (``sibling_seeds``, at most ``n // 2``), the best config
    of this workload from every other machine (most similar first), the best of this machine's own
    ``similar_workloads`` nearest layers, the next ``per_workload - 1`` of this workload from each
    other machine, then the best of the other machines' ``similar_workloads`` nearest workloads.

    Each is completed for this space and kept only when valid there; duplicates are dropped.
    """
    space = task.space()
    # This machine's records of other layers are real measurements here, the best guess of all for
    # a similar layer; its records of this layer are not seeds (the task is then tuned, not transferred).
    pool = [r for r in records if r.get("status") == "ok" and r.get("variant") == task.variant
            and r.get("template") == task.template and not r.get("emulated") and not r.get("modelled")
            and (record_kind(r) != machine.kind or r.get("workload_key") != task.workload.key)
            and _fits(r, space)]
    groups: dict[tuple, list[dict]] = {}
    for r in pool:
        groups.setdefault((record_kind(r), r["workload_key"]), []).append(r)

    workloads = {r["workload_key"]: r["workload"] for r in pool}
    dist = {k: 0.0 if k == task.workload.key else workload_distance(task.workload, ConvWorkload.from_dict(w))
            for k, w in workloads.items()}
    ranked = sorted(groups, key=lambda g: (dist[g[1]] > 0, -similarity(machine, record_machine(groups[g][0])),
                                           dist[g[1]]))
    same = [g for g in ranked if g[1] == task.workload.key]
    near = [g for g in ranked if g[1] != task.workload.key]
    own = [g for g in near if g[0] == machine.kind][:similar_workloads]  # nearest first
    others = [g for g in near if g[0] != machine.kind]
    near_wls = list(dict.fromkeys(g[1] for g in others))[:similar_workloads]
    # this workload: each machine's best, then this machine's nearest layers' best, then the other
    # machines' next few (round robin), then their nearest workloads' best. With several source
    # machines their few best each would fill every slot before this machine's own layers.
    mine = {g: _distinct_families(sorted(groups[g], key=median_time), per_workload) for g in same}
    recs = [mine[g][0] for g in same]
    recs += [min(groups[g], key=median_time) for g in own]
    recs += [mine[g][i] for i in range(1, per_workload) for g in same if i < len(mine[g])]
    recs += [min(groups[g], key=median_time) for g in others if g[1] in near_wls]
    out = sibling_seeds(task, records, machine, n // 2)
    seen = {fingerprint(c) for c in out}
    # A config from a machine of another vector width takes its place as its register tile rebuilt for this
    # one (``register_tile_for``: on Zen 3 (AVX2) the AVX-512 machines' tiles spill as they are); the configs
    # as they were come after all of them. So this machine's own layers keep their slots.
    cfgs = [space.complete(r["config"]) for r in recs]
    fitted = [register_tile_for(c, record_machine(r), machine, space) for c, r in zip(cfgs, recs)]
    for cfg in [f if f is not None else c for f, c in zip(fitted, cfgs)] + cfgs:
        k = fingerprint(cfg)
        if k not in seen:
            seen.add(k)
            out.append(cfg)
    return out[:n]


def register_tile_for(cfg: dict, src: Machine, dst: Machine, space) -> dict | None:
    """``cfg``'s register tile (``tile_oh`` x ``tile_ow`` x ``ob`` accumulators) rebuilt for ``dst``: the same
    number of vectors per output-channel block (``ob`` scaled by the lane ratio), then, while the
    accumulators exceed ``dst``'s registers less 3 (operands), fewer vectors per block down to one, then a
    narrower ``tile_ow``. None when the vector widths match, a width is unknown, the space has no such
    knobs, or the result is not valid here."""
    a, b = src.vector_registers, dst.vector_registers
    if a is None or b is None or a == b or not {"ob", "tile_ow"} <= set(cfg):
        return None
    values = {k.name: sorted(v for v in k.values if isinstance(v, int)) for k in space.knobs}
    (src_lanes, _), (lanes, regs) = a, b

    def at_most(knob, x):
        ok = [v for v in values.get(knob, ()) if v <= x]
        return ok[-1] if ok else None

    out = dict(cfg)
    ob = at_most("ob", max(lanes, cfg["ob"] * lanes // src_lanes))
    if ob is None:
        return None
    out["ob"] = ob

    def accumulators(c):
        return c.get("tile_oh", 1) * c["tile_ow"] * max(1, -(-c["ob"] // lanes))

    while accumulators(out) > regs - 3 and out["ob"] > lanes:
        smaller = at_most("ob", out["ob"] // 2)
        if smaller is None or smaller == out["ob"]:
            break
        out["ob"] = smaller
    while accumulators(out) > regs - 3:
        smaller = at_most("tile_ow", out["tile_ow"] - 1)
        if smaller is None:
            break
        out["tile_ow"] = smaller
    out = space.canonical(out)
    return out if space.is_valid(out) and out != cfg else None


def sibling_seeds(task, records: list[dict], machine: Machine, n: int = 4) -> list[dict]:
    """This machine's best configs of this layer in its nearest sibling variant that has records fitting this
    space (``variants.siblings``, in order: float for a codebook, and back), each completed with every value
    of the knobs it lacks, at most ``n``.

    A codebook kernel is a float kernel plus the weight lookup: the float schedule measured here is a
    better first guess than any other machine's codebook schedule (on Zen 5 alexnet conv3 it is 0.96-0.98
    of the 200-trial codebook best, where the other machines' best are 0.90)."""
    sibs = set(siblings(task.variant))
    space = task.space()
    pool = [r for r in records if r.get("status") == "ok" and r.get("variant") in sibs
            and r.get("template") == task.template and r.get("workload_key") == task.workload.key
            and record_kind(r) == machine.kind and not r.get("emulated") and not r.get("modelled")
            and r.get("tuner") != "metaschedule"]
    for variant in siblings(task.variant):  # the nearest sibling with a record that fits here (float first)
        out, seen = [], set()
        recs = sorted((r for r in pool if r["variant"] == variant), key=median_time)
        fits = [(r, space.completions({k: v for k, v in r["config"].items() if k in space.names}, n))
                for r in recs[:16]]
        fits = [(r, c) for r, c in fits if c]
        for r in _distinct_families([r for r, _ in fits], 2):
            for cfg in next(c for q, c in fits if q is r):
                k = fingerprint(cfg)
                if k not in seen:
                    seen.add(k)
                    out.append(cfg)
        if out:
            return out[:n]
    return []


# Knobs that set a schedule's structure (loop order, data layout, instruction): two configs that
# share them differ only in tile sizes and unrolling, which the search then tunes nearby.
_FAMILY = ("layout", "order", "vector", "dot", "decode_at", "pad")


def _distinct_families(recs: list[dict], n: int) -> list[dict]:
    """The ``n`` fastest of ``recs`` (sorted), one per structure first: another machine's few best are
    often variants of one structure, and the structure is what differs most between machines."""
    firsts, rest, seen = [], [], set()
    for r in recs:
        fam = tuple(r["config"].get(k) for k in _FAMILY)
        (rest if fam in seen else firsts).append(r)
        seen.add(fam)
    return (firsts + rest)[:n]


def workload_distance(a: ConvWorkload, b: ConvWorkload) -> float:
    """How far apart two layers are: the summed log2 differences of their channels, output size, kernel and stride."""
    return sum(abs(_lg(x) - _lg(y)) for x, y in ((a.c_in, b.c_in), (a.c_out, b.c_out), (a.out_h, b.out_h),
                                                 (a.out_w, b.out_w), (a.kh, b.kh), (a.stride[0], b.stride[0])))


def _lg(v) -> float:
    return math.log2(max(v, 1))
