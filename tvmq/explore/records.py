"""Which records the explorer reads, which config it shows, and which machine measured them."""

from __future__ import annotations

import json
import platform
from collections import Counter
from pathlib import Path

from ..errors import TvmqError
from ..machine import this_machine
from ..record import log as recordlog
from ..targets import TargetInfo, get_target
from ..task import Task
from ..workload import resolve

# MetaSchedule records point at a database, not at a config of tvmq's space.
SKIP_TUNERS = ("metaschedule",)


def load(logs: str | Path, workload, variant: str, target_name: str) -> list[dict]:
    """Records of (workload, variant, target name) under ``logs``: this machine's where it has any,
    else whatever machine measured them (the output says whose)."""
    path = Path(logs)
    if not path.exists():
        raise TvmqError(f"no tuning logs at {str(path)!r}")
    recs = [r for r in recordlog.read_dir(path, warn=False)
            if r.get("workload_key") == workload.key and r["variant"] == variant
            and r.get("target_name", target_name) == target_name and not r.get("modelled")]
    here = this_machine().kind
    mine = [r for r in recs if r.get("machine_kind") == here]
    return mine or recs


def main_target(records: list[dict]) -> dict | None:
    """The target dict most of the records were measured with (a log may mix machines)."""
    if not records:
        return None
    counts = Counter(json.dumps(r["target"], sort_keys=True) for r in records)
    return json.loads(counts.most_common(1)[0][0])


def of_target(records: list[dict], target: dict | None) -> list[dict]:
    tj = json.dumps(target, sort_keys=True)
    return [r for r in records if json.dumps(r["target"], sort_keys=True) == tj]


def ok(records: list[dict]) -> list[dict]:
    """Timed records of tvmq's own tuners (their configs rebuild in tvmq's space)."""
    return [r for r in records if r["status"] == "ok" and r.get("tuner") not in SKIP_TUNERS]


def gflops(rec: dict, workload) -> float:
    t = recordlog.median_time(rec)
    return workload.flops / t / 1e9 if t not in (0, float("inf")) else 0.0


def machine_line(records: list[dict], here: TargetInfo) -> str:
    """Who measured the records, said plainly, e.g. ``records measured on znver4 (2 cores), not this
    machine (rocketlake): their times are that machine's``."""
    t = main_target(records)
    if t is None:
        return "no records: nothing measured"
    who = t.get("mcpu") or t.get("mtriple") or "an unnamed CPU"
    machines = sorted({_machine_name(r["machine"]) for r in records if r.get("machine")})
    extra = f", machine {', '.join(machines)}" if machines else ""
    mine = here.target.get("mcpu")
    where = (f"this machine ({mine})" if who == mine and here.arch == platform.machine()
             else f"NOT this machine ({mine or platform.machine()}): their times are that machine's")
    if any(r.get("emulated") for r in records):
        where += "; EMULATED (qemu) times, not the board's"
    return f"records measured on mcpu {who} ({t.get('num-cores', '?')} cores{extra}), {where}"


def _machine_name(m) -> str:
    """A record's ``machine`` field (a dict in newer records) as a short name."""
    if isinstance(m, dict):
        return str(m.get("kind") or m.get("llvm_cpu") or m.get("model") or "unnamed")
    return str(m)


def make_task(workload_spec: str, variant: str, target_name: str, target: dict | None = None) -> Task:
    """The task for one layer; ``target`` (a record's target dict) replaces the named target's,
    so code is compiled for the CPU that measured the records."""
    layers = resolve(workload_spec)
    if len(layers) != 1:
        raise TvmqError(f"--workload {workload_spec!r} names {len(layers)} layers; name one, e.g. alexnet.conv3")
    info = get_target(target_name)
    if target is not None:
        info = TargetInfo(info.name, dict(target), info.arch, info.runner, info.description,
                          info.requires_features, info.rpc_key, info.cross_cc, info.extra)
    return Task.make(layers[0], variant, info)


def parse_config(text: str, space, base: dict | None = None) -> dict:
    """A ``--config`` JSON object, missing knobs from ``base`` (the space's default when None);
    invalid -> TvmqError."""
    try:
        cfg = json.loads(text)
    except json.JSONDecodeError as e:
        raise TvmqError(f"--config is not valid JSON: {e}") from None
    if not isinstance(cfg, dict):
        raise TvmqError(f"--config must be a JSON object of knob values, got {type(cfg).__name__}")
    full = dict(base or space.default, **cfg)
    why = space.violation(full)
    if why:
        raise TvmqError(f"--config is not valid for this space: {why}")
    return full


def choose(which: str, task, records: list[dict], base: dict | None = None) -> tuple[dict, dict | None, str]:
    """(config, record or None, label) for ``which``: ``best``, ``default``, ``record:N`` (the
    N-th fastest, 1 = best) or a JSON config (knobs it leaves out taken from ``base``, else the default)."""
    space = task.space()
    if which == "default":
        return space.default, None, "default config"
    if which == "best" or which.startswith("record:"):
        rank = 1 if which == "best" else _rank(which)
        timed = recordlog.ranked([r for r in records if r.get("tuner") not in SKIP_TUNERS])  # as apply-best ranks
        if not timed:
            raise TvmqError(f"no timed records of {task.workload.name} {task.variant} on target "
                            f"{task.target.name} in the logs: use --config JSON or --config default")
        if rank > len(timed):
            raise TvmqError(f"{which}: only {len(timed)} timed records")
        rec = timed[rank - 1]
        return space.complete(rec["config"]), rec, f"record #{rank} ({rec.get('tuner')} trial {rec.get('trial')})"
    return parse_config(which, space, base), None, "given config" if base is None else f"A with {which}"


def _rank(which: str) -> int:
    try:
        n = int(which.split(":", 1)[1])
    except ValueError:
        n = 0
    if n < 1:
        raise TvmqError(f"{which!r}: expected record:N with N >= 1 (1 = the fastest)")
    return n


def measured(cfg: dict, records: list[dict], space) -> dict | None:
    """The timed record of exactly this config (records completed to today's space; measured more than once:
    its median one), if any."""
    key = json.dumps(cfg, sort_keys=True)
    same = [r for r in ok(records) if json.dumps(space.complete(r["config"]), sort_keys=True) == key]
    return min(recordlog.by_config(same), key=recordlog.median_time, default=None)
