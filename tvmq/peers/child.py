"""Peers measured in a child process: the command line both sides share, and the call.

A peer module runs as ``python -m tvmq.peers.MODULE [KIND] WORKLOAD_JSON --threads ...`` and
prints one ``PeerResult`` as JSON on its last stdout line; ``run_child`` starts it and reads
that line back (a crash or timeout becomes a failed ``PeerResult``, never a time).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from ..workload import ConvWorkload
from .base import PeerResult


def arg_parser(prog: str, kinds: tuple | None = None) -> argparse.ArgumentParser:
    """The child's options: the peer's kind (where it has several), the layer as JSON, the settings."""
    ap = argparse.ArgumentParser(prog=prog)
    if kinds:
        ap.add_argument("kind", choices=kinds)
    ap.add_argument("workload", help="one layer object as JSON")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--number", type=int, default=1)
    ap.add_argument("--min-repeat-ms", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=0)
    return ap


def workload_of(args):
    return ConvWorkload.from_dict(json.loads(args.workload))


def run_child(module: str, name: str, wl, head: list[str], threads: int, timeout_s: float, env=None, **kw):
    """Run ``python -m MODULE *head WORKLOAD --threads T --key value ...``; its PeerResult."""
    args = [sys.executable, "-m", module, *head, json.dumps(wl.to_dict()), f"--threads={threads}",
            *[f"--{k.replace('_', '-')}={v}" for k, v in kw.items()]]
    try:
        p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return PeerResult(name, "timeout", error=f"exceeded {timeout_s:g}s", threads=threads)
    if p.returncode != 0:
        tail = (p.stderr.strip().splitlines() or [f"exit code {p.returncode}"])[-1]
        return PeerResult(name, "run_error", error=tail[:300], threads=threads)
    return PeerResult(**json.loads(p.stdout.strip().splitlines()[-1]))
