"""The Python API: the library calls behind ``tvmq tune | bench | export | run | quantize | explore``.

Each function takes the command's flags as keyword arguments (``--from-logs`` is ``from_logs``)
and returns what the command prints or writes, as data. Examples: docs/API.md (run by
tests/test_api.py).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from .cli import command_parser
from .commands import bench as bench_cmd
from .commands import export as export_cmd
from .commands import quantize as quantize_cmd
from .commands import run_lib as run_cmd
from .run.factory import make_runner
from .run.settings import MeasureSettings, RPCSettings
from .errors import TvmqError
from .explore.explorer import explore as _explore
from .machine import default_log, for_runner
from .search.session import TuneOptions, tune_tasks
from .targets import get_target
from .task import Task
from .workload import resolve


def _flags(command: str, positional: list[str], **flags) -> argparse.Namespace:
    """The parsed arguments of ``command`` with ``flags`` set, each checked against the command's options.

    A string value is parsed by the command's own parser (``--name=value``), so it gets the option's
    type and choices exactly as on the CLI; other values are taken as given.
    """
    parser = command_parser(command)
    a = parser.parse_args(positional)  # flags mean exactly what they mean on the CLI
    for k, v in flags.items():
        if not hasattr(a, k):
            raise TvmqError(f"tvmq.{command}: unknown option {k!r}; see `python -m tvmq {command} --help`")
        if isinstance(v, str):
            v = getattr(_parse(parser, command, [*positional, f"--{k.replace('_', '-')}={v}"]), k)
        setattr(a, k, v)
    return a


def _parse(parser: argparse.ArgumentParser, command: str, argv: list[str]) -> argparse.Namespace:
    parser.exit_on_error = False  # a bad value raises (ArgumentError) instead of exiting
    try:
        return parser.parse_args(argv)
    except (argparse.ArgumentError, SystemExit) as e:
        raise TvmqError(f"tvmq.{command}: {' '.join(argv[len(argv) - 1:])}: "
                        f"{e if isinstance(e, argparse.ArgumentError) else 'not accepted'}") from None


def tune(workload: str = "alexnet.conv3", variants: str | list = "float", target: str = "host", trials: int = 64,
         tuner: str = "xgb", log: str | None = None, transfer: bool = False, quiet: bool = True, **flags) -> list:
    """Tune each (layer, variant); returns ``TuneResult``s (``best_config``, ``best_time``, ``gflops``)."""

    a = _flags("tune", [], **flags)
    ti = get_target(target)
    names = variants.split(",") if isinstance(variants, str) else list(variants)
    tasks = [Task.make(wl, v.strip(), ti) for wl in resolve(workload) for v in names]
    opts = TuneOptions(trials=trials, tuner=tuner, batch_size=a.batch_size, early_stopping=a.early_stopping,
                       resume=a.resume, warm_start=not a.no_warm_start, transfer=transfer, seed=a.seed,
                       progress=not quiet, retime=a.retime)
    runner = make_runner(ti, RPCSettings.from_flags(a, ti))
    try:
        machine = for_runner(ti, runner)
        path = Path(log) if log else default_log(machine, ti)
        return tune_tasks(tasks, opts, MeasureSettings.from_flags(a), runner, machine, path, a.logs)
    finally:
        runner.close()


def bench(suite: str = "alexnet", **flags) -> dict:
    """Benchmark a suite (``tvmq bench``); returns its results.json (rows, peak, meta)."""

    out = flags.pop("out", None) or tempfile.mkdtemp(prefix="tvmq-bench-")
    a = _flags("bench", [], suite=suite, out=str(out), **flags)
    bench_cmd.run(a)
    return json.loads((Path(out) / "results.json").read_text())


def export(out: str, **flags) -> dict:
    """Export layer libraries or a whole model (``tvmq export``); returns the manifest."""

    export_cmd.run(_flags("export", [], out=str(out), **flags))
    return json.loads((Path(out) / "manifest.json").read_text())


def run(export_dir: str, **flags) -> dict:
    """Load, run and verify an export with the TVM runtime only (``tvmq run``); returns its results."""

    path = flags.pop("json", None) or str(Path(tempfile.mkdtemp(prefix="tvmq-run-")) / "run.json")
    rc = run_cmd.run(_flags("run", [str(export_dir)], json=path, **flags))
    res = json.loads(Path(path).read_text())
    return dict(res, exit_code=rc) if isinstance(res, dict) else {"results": res, "exit_code": rc}


def quantize(model: str, method: str = "kmeans", bits: int = 4, **flags) -> dict:
    """Quantize an ONNX model's Conv/Gemm weights (``tvmq quantize``); returns the report."""

    path = flags.pop("json", None) or str(Path(tempfile.mkdtemp(prefix="tvmq-quantize-")) / "report.json")
    quantize_cmd.run(_flags("quantize", [str(model)], method=method, bits=bits, json=path, **flags))
    return json.loads(Path(path).read_text())


def explore(workload: str, variant: str, target: str = "host", logs: str = "autotune_logs", **kw) -> str:
    """The explorer's text for one layer and variant (``tvmq explore``)."""

    return _explore(workload, variant, target, logs, **kw)
