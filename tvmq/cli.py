"""``python -m tvmq``: one subcommand per user task; each lives in ``tvmq/commands/``."""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .errors import TvmqError

# name -> (module under tvmq.commands, one-line help)
COMMANDS = {
    "tune": ("tune", "auto-tune convolution variants for a target and print the comparison table"),
    "bench": ("bench", "benchmark variants against im2col, float, MetaSchedule and onnxruntime; write a report"),
    "quantize": ("quantize", "quantize the Conv/Gemm weights of an ONNX model and report error and compression"),
    "export": ("export", "build tuned kernels (or a whole model) into a deployable library"),
    "run": ("run_lib", "load an exported library with the TVM runtime only, run and verify it"),
    "explore": ("explore", "show why a schedule is fast: loop nest, inner-loop assembly, roofline, the space"),
    "targets": ("targets", "list the targets and whether each can run here"),
    "edge": ("edge", "bring the emulated Raspberry Pi (qemu + TVM RPC) up, down, or show its status"),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tvmq", description=__doc__.split(":")[0] + ": " + __doc__.split(": ", 1)[1])
    p.add_argument("--version", action="version", version=f"tvmq {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, (mod, help_) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_, description=help_)
        m = importlib.import_module(f"tvmq.commands.{mod}")
        m.add_arguments(sp)
        sp.set_defaults(_run=m.run)
    return p


def command_parser(name: str) -> argparse.ArgumentParser:
    """The parser of one command (the Python API sets its flags by name)."""
    if name not in COMMANDS:
        raise TvmqError(f"unknown command {name!r}; valid commands are {list(COMMANDS)}")
    p = argparse.ArgumentParser(prog=f"tvmq {name}")
    importlib.import_module(f"tvmq.commands.{COMMANDS[name][0]}").add_arguments(p)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    try:
        return args._run(args) or 0
    except TvmqError as e:
        print(f"tvmq {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tvmq {args.command}: interrupted; every finished measurement is on disk (use --resume)", file=sys.stderr)
        return 130
