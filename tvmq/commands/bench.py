"""``tvmq bench``: arguments -> ``tvmq.bench.suite.run_suite`` (kernels, peak and peers measured in one run)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..bench.jobs import TVMQ_TUNERS
from ..bench.suite import run_suite
from ..errors import TvmqError
from ..targets import get_target
from ..variants import VARIANTS, unknown
from ..workload import resolve
from .common import add_measure_args, add_rpc_args
from ..bench.model import bench_model, table
from ..bench.model import breakdown as bench_breakdown
from ..report import breakdown as BD

DEFAULT_VARIANTS = "float,codebook,codebook4,codebook_int8,int8,im2col,im2col_int8,im2col_codebook"


DEFAULT_PEERS = "ort,numpy,metaschedule,torch"


PEERS = ("ort", "numpy", "metaschedule", "torch")  # torch: optional, where it is installed


FLOAT_BASE = "float"


class _ThreadsAsList:
    """Passes ``add_measure_args`` through, with ``--threads`` taking a list (1,2) instead of one count."""

    def __init__(self, parser):
        self.parser = parser

    def add_argument_group(self, *args, **kw):
        return _ThreadsAsList(self.parser.add_argument_group(*args, **kw))

    def add_argument(self, *names, **kw):
        if "--threads" in names:
            kw = dict(kw, type=str, default=str(kw.get("default", 2)),
                      help="comma-separated TVM runtime thread counts, e.g. 1,2 (default %(default)s)")
        return self.parser.add_argument(*names, **kw)


def add_arguments(p):
    p.add_argument("--suite", default="alexnet",
                   help="alexnet, large, llc, one layer (alexnet.conv3), or a workload FILE (JSON list of layers)")
    p.add_argument("--target", default="host", help="host, server or edge (see `tvmq targets`)")
    p.add_argument("--from-logs", metavar="DIR",
                   help="tuning records (*.jsonl under DIR, or one file) to rebuild the best schedules from")
    p.add_argument("--transfer", action="store_true",
                   help="where this machine has no record, build from the most similar machine's (with a warning)")
    p.add_argument("--trials", type=int, default=0,
                   help="tune each layer and variant for N trials first (--tuner; MetaSchedule too when it is a "
                        "peer), appending to DIR/TARGET.jsonl (DIR: --from-logs, else OUT/logs)")
    p.add_argument("--tuner", default="auto",
                   help="whose records to use: auto (xgb when present, else the best of any tvmq tuner) or "
                        "xgb/random/grid; with --trials, the tuner to run (auto = xgb)")
    p.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"comma-separated (default {DEFAULT_VARIANTS})")
    p.add_argument("--peers", default=DEFAULT_PEERS,
                   help=f"comma-separated subset of {','.join(PEERS)}, or none (default {DEFAULT_PEERS})")
    p.add_argument("--out", help="output folder (default out/bench-TARGET-SUITE)")
    p.add_argument("--json", help="also write the per layer and variant results as a JSON list here")
    p.add_argument("--perf", action="store_true", help="add hardware counters from `perf stat` where they work")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    g = p.add_argument_group("a whole exported model (instead of --suite)")
    g.add_argument("--export", metavar="DIR", help="an exported model: compare it with onnxruntime and untuned TVM "
                                                   "Relax, each timed in a process of its own")
    g.add_argument("--model", help="the float ONNX model (default: DIR/source.onnx, else the exported path)")
    g.add_argument("--data", help=".npz with x, y for top-1 accuracy")
    g.add_argument("--calib", help="the .npz the int8 export calibrated on, where the path in its manifest does not "
                                   "resolve from here (onnxruntime's int8 model calibrates on the same inputs)")
    g.add_argument("--breakdown", action="store_true",
                   help="also each tvmq kernel's and glue operator's share of the export's time: breakdown.md and "
                        "breakdown.png in --out (default out/bench-export-NAME)")
    add_measure_args(_ThreadsAsList(p))
    add_rpc_args(p)


def _csv_list(s: str) -> list[str]:
    return [x.strip() for x in (s or "").split(",") if x.strip()]


def _layers(suite: str):
    if suite.endswith(".json") or os.path.sep in suite or Path(suite).is_file():
        return resolve(file=suite), Path(suite).stem
    return resolve(suite), suite.replace(".", "-")


def _parse(a):
    target = get_target(a.target)
    layers, suite_label = _layers(a.suite)
    variants = _csv_list(a.variants)
    bad = unknown(variants)
    if bad or not variants:
        raise TvmqError(f"unknown variant(s) {bad}; valid variants are {sorted(VARIANTS)}")
    peers = [] if a.peers.strip().lower() == "none" else _csv_list(a.peers)
    bad = [x for x in peers if x not in PEERS]
    if bad:
        raise TvmqError(f"unknown peer(s) {bad}; valid peers are {list(PEERS)} or none")
    try:
        threads = sorted({int(t) for t in _csv_list(a.threads)})
    except ValueError:
        raise TvmqError(f"--threads must be comma-separated integers (e.g. 1,2), got {a.threads!r}") from None
    if not threads or threads[0] < 1:
        raise TvmqError(f"--threads must be positive integers, got {a.threads!r}")
    if a.trials < 0:
        raise TvmqError(f"--trials must be >= 0, got {a.trials}")
    if a.tuner not in ("auto", *TVMQ_TUNERS):
        raise TvmqError(f"unknown --tuner {a.tuner!r}; valid: auto, {', '.join(TVMQ_TUNERS)}")
    return target, layers, suite_label, variants, peers, threads


def run(a):
    if a.export:
        return _run_model(a)
    return run_suite(a, *_parse(a))


def _run_model(a):
    threads = sorted({int(t) for t in _csv_list(a.threads)})[-1]
    r = bench_model(a.export, a.model, a.data, threads, max(a.repeat, 3), a.seed, calib=a.calib)
    text = table(r)
    print(text)
    out = Path(a.out or Path("out") / f"bench-export-{Path(a.export).resolve().name}")
    out.mkdir(parents=True, exist_ok=True)
    report = ["# tvmq bench --export " + str(a.export), "", text]
    if a.breakdown:
        b = bench_breakdown(a.export, threads, max(a.repeat, 3), a.seed)
        r["breakdown"] = b
        (out / "breakdown.md").write_text(BD.markdown(b))
        made = ["breakdown.md"]
        if not a.no_plots:
            BD.plot(b, out / "breakdown.png")
            made.append("breakdown.png")
        top = ", ".join(f"{k['kind']} {100 * k['share']:.0f}%" for k in b["kinds"][:4])
        print(f"breakdown: {top} ({' and '.join(str(out / m) for m in made)})")
        report += ["", f"Where the time goes: {top}; every function in [breakdown.md](breakdown.md)" +
                   ("" if a.no_plots else ", plotted in breakdown.png") + "."]
    (out / "report.md").write_text("\n".join(report) + "\n")
    (out / "results.json").write_text(json.dumps(r, indent=1) + "\n")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(r, indent=1) + "\n")
    return 0
