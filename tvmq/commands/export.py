"""``tvmq export``: build tuned kernels (a layer library) or a whole quantized ONNX model for a target.

    tvmq export --target host --workload alexnet --variants float,codebook,int8 --out out/alexnet-host
    tvmq export --target edge --model tvmq/data/digits_cnn.onnx --quantize kmeans --bits 5 --out out/digits-edge

The best record of each layer in ``--logs`` is rebuilt (the search space's default schedule,
with a warning, where there is none), compiled for the target (cross-linked for edge) into
one ``lib.so``, with ``weights.npz`` (models) and ``manifest.json``. See docs/DEPLOY.md.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from ..errors import TvmqError
from ..variants import QUANTIZATIONS, exportable, model_variant
from .common import add_workload_args
from ..export import MANIFEST_NAME
from ..record import log as recordlog
from ..record.select import RecordSet
from ..targets import get_target
from ..export.layers import export_layers
from ..workload import resolve
from ..export.model import ModelOptions
from ..export.model import model_workloads
from ..export.model import export_model
from ..build.cross import check_cross_cc


DEFAULT_VARIANTS = "float,codebook,int8"


def add_arguments(p):
    p.add_argument("--target", default="host", help="server, edge or host (see `tvmq targets`); default host")
    src = p.add_argument_group("what to export (one of)")
    add_workload_args(src)
    src.add_argument("--model", help="an ONNX CNN to export whole (Conv/Gemm through tuned kernels)")
    p.add_argument("--variants", default=None,
                   help=f"layer libraries: comma-separated variants (default {DEFAULT_VARIANTS})")
    p.add_argument("--quantize", default="none", choices=list(QUANTIZATIONS),
                   help="models: conv/dense weights as float (none), k-means codebook (float centroids), int8, "
                        "or k-means codebook with int8 centroids and uint8 activations (kmeans_int8) (default none)")
    p.add_argument("--bits", type=int, default=None,
                   help="codebook index bits for --quantize kmeans (default 5) and kmeans_int8 (default 4)")
    p.add_argument("--batch", type=int, default=1, help="models: batch size of the exported model (default 1)")
    p.add_argument("--calib", help="models, int8 and kmeans_int8: .npz with array 'x' whose first --calib-samples samples "
                                   "set the activation ranges (default: random inputs)")
    p.add_argument("--calib-samples", type=int, default=64)
    p.add_argument("--random-weights", type=int, default=None, metavar="SEED",
                   help="models: replace every weight by seeded random values (for the onnx package's light test "
                        "models, whose weights are all 0.02) and write that float model to OUT/source.onnx")
    p.add_argument("--workloads-out", metavar="FILE",
                   help="models: only write the distinct conv layers (a --workload-file for `tvmq tune`) and exit")
    p.add_argument("--logs", default="autotune_logs", help="tuning records: a .jsonl file or a folder of them "
                                                           "(default autotune_logs)")
    p.add_argument("--transfer", action="store_true",
                   help="where this machine has no record, build from the most similar machine's (with a warning)")
    p.add_argument("--out", help="output folder (created; an existing export there is replaced); required")


def check_out(out: Path):

    if out.exists() and not out.is_dir():
        raise TvmqError(f"--out: {str(out)!r} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST_NAME).is_file():
        raise TvmqError(f"--out: {str(out)!r} is a non-empty folder that is not a tvmq export; choose another")


def run(a):

    target = get_target(a.target)
    if not a.model and not (a.workload or a.workload_file):
        raise TvmqError("nothing to export: give --workload SPEC, --workload-file F or --model MODEL.onnx")
    if a.model and (a.workload or a.workload_file):
        raise TvmqError("give either --model or --workload/--workload-file, not both")
    if a.workloads_out:
        return _workloads_out(a, target)
    if not a.out:
        raise TvmqError("--out DIR is required (the folder to write lib.so, weights.npz and manifest.json to)")
    if target.cross_cc:

        check_cross_cc(target.cross_cc)
    out = Path(a.out)
    check_out(out)
    logs = Path(a.logs)
    if logs.exists():
        records = RecordSet(recordlog.read_dir(logs), transfer=a.transfer, cold=bool(a.model))
    else:
        print(f"tvmq export: warning: no tuning logs at {str(logs)!r}; every layer gets the default schedule",
              file=sys.stderr)
        records = []
    tmp = out.parent / f".{out.name}.tmp-export"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    try:
        if a.model:
            man = _export_model(a, target, records, tmp)
        else:
            man = _export_layers(a, target, records, tmp)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"tvmq export: wrote {out}/ (lib.so{', weights.npz' if 'weights' in man['files'] else ''}, manifest.json); "
          f"check it with: python -m tvmq run {out}" + (" (on the board: add --rpc-tracker HOST:PORT)"
                                                        if target.runner == 'rpc' else ""))
    return 0


def _export_layers(a, target, records, out):

    if a.quantize != "none" or a.bits is not None:
        raise TvmqError("--quantize/--bits apply to --model; for layers choose --variants (e.g. codebook4)")
    layers = resolve(a.workload, a.workload_file)
    variants = [v.strip() for v in (a.variants or DEFAULT_VARIANTS).split(",") if v.strip()]
    bad = [v for v in variants if v not in exportable()]
    if bad:
        raise TvmqError(f"cannot export variant(s) {bad}; valid variants are {exportable()}")
    return export_layers(target, layers, variants, records, out)


def _options(a):

    return ModelOptions(quantize=a.quantize, bits=a.bits, batch=a.batch, calib=a.calib,
                        calib_samples=a.calib_samples, random_weights=a.random_weights)


def _workloads_out(a, target):
    if not a.model:
        raise TvmqError("--workloads-out applies to --model")
    opts = _options(a)
    wls = model_workloads(a.model, target, opts)
    Path(a.workloads_out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.workloads_out).write_text(json.dumps([w.to_dict() for w in wls], indent=1) + "\n")
    variant = model_variant(opts.quantize, opts.bits)
    print(f"tvmq export: {len(wls)} distinct conv layer(s) -> {a.workloads_out}; tune them with:\n"
          f"  python -m tvmq tune --target {target.name} --workload-file {a.workloads_out} --variants {variant} "
          f"--log {a.logs}/{target.name}.jsonl")
    return 0


def _export_model(a, target, records, out):

    if a.variants:
        raise TvmqError("--variants applies to layer libraries; a model's variant follows --quantize")
    return export_model(a.model, target, records, out, _options(a))
