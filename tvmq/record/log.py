"""Tuning records: append-only JSON lines, one per measured candidate.

Each line carries the schema version, tvmq and TVM versions, the full
target, the workload, variant, config, every repeat's time and the status,
and is flushed to disk as soon as the measurement finishes, so an
interrupted run loses nothing and ``--resume`` continues it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

SCHEMA_VERSION = 1
REQUIRED = ("schema_version", "target", "workload", "variant", "config", "times", "status")


def make_record(task, cfg: dict, result, runner: str, settings, tuner: str, trial: int) -> dict:
    """One record for a measured candidate (times only when the status is ``ok``)."""
    import tvm

    from .. import __version__

    return {
        "schema_version": SCHEMA_VERSION,
        "tvmq_version": __version__,
        "tvm_version": tvm.__version__,
        "task_key": task.key,
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
        "error": result.error,
        "max_abs_err": result.max_abs_err,
        "compile_s": round(result.compile_s, 4),
        "runner": runner,
        "emulated": runner == "rpc-emulated",
        "tuner": tuner,
        "trial": trial,
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


def read(path: str | Path, warn=True) -> list[dict]:
    """All well-formed records of a file; a malformed or truncated line is skipped with a warning."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
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
                if rec["schema_version"] != SCHEMA_VERSION:
                    raise ValueError(f"schema_version {rec['schema_version']} (this tvmq reads {SCHEMA_VERSION})")
            except (json.JSONDecodeError, ValueError, TypeError) as e:
                if warn:
                    print(f"tvmq: warning: {path}:{lineno}: skipped malformed record ({e})", file=sys.stderr)
                continue
            out.append(rec)
    return out


def read_dir(path: str | Path, warn=True) -> list[dict]:
    """Records of every ``*.jsonl`` under ``path`` (a file is read as itself)."""
    path = Path(path)
    if path.is_file():
        return read(path, warn)
    return [r for p in sorted(path.rglob("*.jsonl")) for r in read(p, warn)]


def median_time(rec: dict) -> float:
    return float(np.median(rec["times"])) if rec.get("status") == "ok" and rec.get("times") else float("inf")


def best(records: list[dict], target: dict, workload_key: str, variant: str, params: dict | None = None):
    """The fastest ``ok`` record of (target, workload, variant[, params]), or None."""
    tj = json.dumps(target, sort_keys=True)
    cands = [r for r in records if r["status"] == "ok" and r.get("workload_key") == workload_key
             and r["variant"] == variant and json.dumps(r["target"], sort_keys=True) == tj
             and (params is None or r.get("params") == params)]
    return min(cands, key=median_time, default=None)


def measured_configs(records: list[dict], task_key: str) -> set[str]:
    """Config keys already measured for a task (any status): what --resume skips."""
    return {json.dumps(r["config"], sort_keys=True) for r in records if r.get("task_key") == task_key}
