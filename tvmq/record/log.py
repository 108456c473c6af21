"""Tuning records: append-only JSON lines, one per measured candidate.

Each line carries the schema version, tvmq and TVM versions, the full
target, the machine that measured it (``tvmq.machine``), the runtime threads,
the search space's fingerprint, the workload, variant, config, every repeat's
time, the status and, for failures, whether the kernel or the board failed.
Each is flushed to disk as soon as the measurement finishes, so an interrupted
run loses nothing and ``--resume`` continues it.

Schema 1 lines (no machine) still load: ``upgrade`` fills the machine in from
their target. A line of a newer schema is an error: this tvmq cannot read it.
"""

from __future__ import annotations

import json
import os
from importlib import metadata
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import BOARD_ERROR_PREFIX, TvmqError
from ..machine import Machine, from_legacy_record
from .. import __version__
from ..machine import this_machine

SCHEMA_VERSION = 2
REQUIRED = ("schema_version", "target", "workload", "variant", "config", "times", "status")


def failure_kind(status: str, error: str) -> str | None:
    """``board`` (retry on resume), ``kernel`` (never retried) or None for ``ok``."""
    if status == "ok":
        return None
    return "board" if (error or "").startswith(BOARD_ERROR_PREFIX) else "kernel"


def make_record(task, cfg: dict, result, runner: str, settings, tuner: str, trial: int,
                machine: Machine | None = None, retime: bool = False) -> dict:
    """One record for a measured candidate (times only when the status is ``ok``); ``retime``: a config
    measured again at the end of a run (not a trial; ``by_config`` rates a config by all its records)."""

    machine = machine or this_machine()
    return {
        "schema_version": SCHEMA_VERSION,
        "tvmq_version": __version__,
        "tvm_version": tvm_version(),
        "task_key": task.measure_key(machine.kind, settings.threads, settings.flush_cache),
        "machine": machine.to_dict(),
        "machine_kind": machine.kind,
        "threads": settings.threads,
        "space": task.space().fingerprint,
        "target": task.target.target,
        "target_name": task.target.name,
        "workload": task.workload.to_dict(),
        "workload_key": task.workload.key,
        "variant": task.variant,
        "params": task.params,
        "template": task.template,
        "config": cfg,
        "times": list(result.times) if result.status == "ok" else [],
        "status": result.status,
        "failure": failure_kind(result.status, result.error),
        "error": result.error,
        "max_abs_err": result.max_abs_err,
        "compile_s": round(result.compile_s, 4),
        "runner": runner,
        "board": getattr(result, "board", None) or machine.board,
        "emulated": machine.emulated or runner == "rpc-emulated",
        "modelled": runner == "model",  # a performance model's estimate: it ranks, it never chooses
        "tuner": tuner,
        "trial": trial,
        "retime": retime,
        "settings": settings.to_dict(),
        "timestamp": round(time.time(), 3),
    }


def append(path: str | Path, record: dict):
    """Append one line and force it to disk."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def tvm_version() -> str:
    """The installed TVM's version, read from its package metadata (no import of TVM)."""
    try:
        return metadata.version("apache-tvm")
    except metadata.PackageNotFoundError:
        import tvm  # a source build has no package metadata

        return tvm.__version__


def upgrade(rec: dict) -> dict:
    """A schema-1 record in schema 2's shape: machine from its target, threads from its settings."""
    if rec.get("schema_version") != 1:
        return rec
    m = Machine.from_dict(rec["machine"]) if isinstance(rec.get("machine"), dict) else from_legacy_record(rec)
    return dict(rec, machine=m.to_dict(), machine_kind=m.kind, threads=rec.get("settings", {}).get("threads"),
                failure=failure_kind(rec["status"], rec.get("error", "")), legacy_task_key=rec.get("task_key"))


def read(path: str | Path, warn=True) -> list[dict]:
    """All well-formed records of a file, schema 1 upgraded.

    A malformed or truncated line is skipped with a warning naming the file and line; a line
    written by a newer tvmq (schema above ``SCHEMA_VERSION``) is an error; records of another TVM
    version load with one warning (bench and export rebuild and verify what they use).
    """
    path = Path(path)
    if not path.exists():
        return []
    out = []
    other_tvm, here = set(), tvm_version()
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
                missing = [k for k in REQUIRED if k not in rec]
                if missing:
                    raise ValueError(f"missing keys {missing}")
                ver = rec["schema_version"]
                if isinstance(ver, int) and ver > SCHEMA_VERSION:
                    raise TvmqError(f"{path}:{lineno}: record schema {ver} is newer than this tvmq reads "
                                    f"({SCHEMA_VERSION}): upgrade tvmq to read this log")
                if ver not in (1, SCHEMA_VERSION):
                    raise ValueError(f"schema_version {ver!r} (this tvmq reads 1..{SCHEMA_VERSION})")
            except (json.JSONDecodeError, ValueError, TypeError) as e:
                if isinstance(e, TvmqError):
                    raise
                if warn:
                    print(f"tvmq: warning: {path}:{lineno}: skipped malformed record ({e})", file=sys.stderr)
                continue
            if rec.get("tvm_version") not in (None, here):
                other_tvm.add(rec["tvm_version"])
            out.append(upgrade(rec))
    if other_tvm and warn:
        print(f"tvmq: warning: {path}: records from TVM {sorted(other_tvm)} (this is TVM {here}): "
              "their configs are rebuilt and verified before use, their times are not comparable",
              file=sys.stderr)
    return out


def read_dir(path: str | Path, warn=True) -> list[dict]:
    """Records of every ``*.jsonl`` under ``path`` (a file is read as itself)."""
    path = Path(path)
    if path.is_file():
        return read(path, warn)
    return [r for p in sorted(path.rglob("*.jsonl")) for r in read(p, warn)]


def median_time(rec: dict) -> float:
    return float(np.median(rec["times"])) if rec.get("status") == "ok" and rec.get("times") else float("inf")


def _groups(records: list[dict]) -> dict[str, list[dict]]:
    """Records by config (key: the config's JSON), each group fastest first."""
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(json.dumps(r["config"], sort_keys=True), []).append(r)
    return {k: sorted(g, key=median_time) for k, g in groups.items()}


def by_config(records: list[dict]) -> list[dict]:
    """One record per config: the one whose time is the median (the slower middle one of an even count)
    of that config's records. A config measured again (a run's re-time, another run) is rated by its
    typical time, not by its luckiest sample."""
    return [g[len(g) // 2] for g in _groups(records).values()]


def ranked(records: list[dict]) -> list[dict]:
    """``by_config`` of the ``ok`` records, fastest first, configs measured more than once ahead of the
    rest (a re-time measured the run's best few again; another config's one sample may be lucky).
    A config whose re-time failed, not because of the board, is left out."""
    groups = _groups(records)
    flaky = {k for k, g in groups.items()
             if any(r.get("retime") and r.get("status") != "ok" and r.get("failure") != "board" for r in g)}
    ok = {k: [r for r in g if r.get("status") == "ok" and r.get("times")] for k, g in groups.items() if k not in flaky}
    picks = [(len(g) < 2, g[len(g) // 2]) for g in ok.values() if g]  # each group is still fastest first
    return [r for _, r in sorted(picks, key=lambda p: (p[0], median_time(p[1])))]


def best(records: list[dict], target: dict, workload_key: str, variant: str, params: dict | None = None):
    """The fastest ``ok`` record of (target, workload, variant[, params]), or None."""
    tj = json.dumps(target, sort_keys=True)
    cands = [r for r in records if r["status"] == "ok" and r.get("workload_key") == workload_key
             and r["variant"] == variant and json.dumps(r["target"], sort_keys=True) == tj
             and (params is None or r.get("params") == params)]
    return min(cands, key=median_time, default=None)
