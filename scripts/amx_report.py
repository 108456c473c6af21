"""Issue 18's table: tuned AMX int8 and bf16 against tvmq's VNNI and float kernels, onnxruntime and torch.

For each layer, from this machine's records in ``--log``: the best int8 config whose ``dot`` is AMX,
the best with ``vnni`` (or the most similar layer's best ``vnni`` config, when faster here: the tuner
may have spent few trials on VNNI), the best ``bf16`` and the best ``float``, each rebuilt and timed in tvmq's
local measurement worker (checked against numpy first). The peers run first, each in a process of
its own, before any TVM kernel has run here: onnxruntime fp32 Conv and QLinearConv, and where torch
is installed, torch's fp32, bf16 and quantized int8 (oneDNN) convolutions. Ratios are time ratios in
this one run (> 1: the first is faster). Also bf16's error against float (``tvmq.ops.bf16.error_vs_float``).

    .venv/bin/python scripts/amx_report.py --log autotune_logs/intel-rocketlake-2c/host.jsonl \\
        --layers alexnet.conv2,alexnet.conv3,alexnet.conv4,alexnet.conv5,large.bench7 --threads 2
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tvmq.bench.jobs import build_kernel  # noqa: E402
from tvmq.machine import for_target  # noqa: E402
from tvmq.ops.bf16 import error_vs_float  # noqa: E402
from tvmq.peers import onnxruntime_conv, torch_conv  # noqa: E402
from tvmq.record import log as recordlog  # noqa: E402
from tvmq.record.select import choose, workload_distance  # noqa: E402
from tvmq.run.base import BuildResult  # noqa: E402
from tvmq.run.local import LocalRunner  # noqa: E402
from tvmq.run.settings import MeasureSettings  # noqa: E402
from tvmq.run.verify import TaskVerifier  # noqa: E402
from tvmq.targets import get_target  # noqa: E402
from tvmq.task import Task  # noqa: E402
from tvmq.workload import ConvWorkload, resolve  # noqa: E402

# (row name, variant, which records of it): the dot families compared
FAMILIES = [("float", "float", lambda c: True), ("bf16", "bf16", lambda c: True),
            ("int8 vnni", "int8", lambda c: c.get("dot") == "vnni"),
            ("int8 amx", "int8", lambda c: str(c.get("dot", "")).startswith("amx"))]
PEERS = [("ort.conv", onnxruntime_conv, "conv"), ("ort.qlinearconv", onnxruntime_conv, "qlinearconv"),
         ("torch.conv", torch_conv, "conv"), ("torch.conv_bf16", torch_conv, "conv_bf16"),
         ("torch.qconv", torch_conv, "qconv")]


def _ms(x):
    return x * 1e3 if x else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log", required=True)
    ap.add_argument("--layers", default="alexnet.conv2,alexnet.conv3,alexnet.conv4,alexnet.conv5,large.bench7")
    ap.add_argument("--target", default="host")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--min-repeat-ms", type=int, default=50)
    ap.add_argument("--json", help="write the rows here too")
    a = ap.parse_args()
    target = get_target(a.target)
    machine = for_target(target)
    records = recordlog.read(a.log)
    layers = [wl for spec in a.layers.split(",") for wl in resolve(spec)]
    kw = dict(threads=a.threads, repeat=a.repeat, min_repeat_ms=a.min_repeat_ms)
    rows = {wl.name: {"layer": wl.name, "gflop": wl.flops / 1e9} for wl in layers}
    for wl in layers:  # peers first: no TVM thread pool is spinning yet
        for name, mod, kind in PEERS:
            if mod is torch_conv and not torch_conv.available():
                continue
            r = mod.run_isolated(kind, wl, **kw)
            rows[wl.name][name] = _ms(r.median) if r.ok else None
            print(f"{wl.name} {name}: {r.status} {rows[wl.name][name]}", file=sys.stderr, flush=True)
    runner = LocalRunner()
    settings = MeasureSettings(threads=a.threads, repeat=a.repeat, min_repeat_ms=a.min_repeat_ms, timeout_s=120)
    with tempfile.TemporaryDirectory() as tmp:
        for wl in layers:
            for name, variant, keep in FAMILIES:
                task = Task.make(wl, variant, target)
                fam = [r for r in records if r.get("status") == "ok" and keep(r.get("config", {}))]
                picks = [(c.record, "") for c in [choose(task, fam, machine, a.threads)] if c.record is not None]
                if name == "int8 vnni":  # the tuner may have spent few trials on VNNI: also a near layer's best
                    picks += _nearest_layer_best(wl, variant, target, fam, machine, a.threads)
                if not picks:
                    rows[wl.name][name] = None
                    print(f"{wl.name} {name}: no record on {machine.kind}", file=sys.stderr)
                    continue
                for k, (record, src) in enumerate(picks):
                    _, cfg, lib, _, _ = build_kernel(task, record, Path(tmp), f"{wl.name}_{name.replace(' ', '_')}_{k}")
                    (res,) = runner.run([BuildResult(cfg, "ok", lib)], TaskVerifier(task, 0), settings)
                    ms = _ms(res.median) if res.ok else None
                    print(f"{wl.name} {name} ({cfg.get('dot', '-')}{src}): {res.status} {res.error} {ms}",
                          file=sys.stderr, flush=True)
                    if ms is not None and (rows[wl.name].get(name) is None or ms < rows[wl.name][name]):
                        rows[wl.name][name], rows[wl.name][name + " dot"] = ms, cfg.get("dot", "-") + src
            rows[wl.name]["bf16_err"] = error_vs_float(wl)["max_rel_err"]
    runner.close()
    out = list(rows.values())
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))
    print(table(out, machine, a.threads))


def _nearest_layer_best(wl, variant, target, fam, machine, threads):
    """[(record, " from LAYER")]: the best record of the most similar other layer with one, to be rebuilt for ``wl``."""
    others = {r["workload"]["name"]: r["workload"] for r in fam
              if r.get("variant") == variant and r.get("workload", {}).get("name") != wl.name}
    near = sorted((workload_distance(wl, ConvWorkload.from_dict(d)), n) for n, d in others.items())
    space = Task.make(wl, variant, target).space()
    for _, n in near:  # the nearest whose best config is valid for this layer
        c = choose(Task.make(ConvWorkload.from_dict(others[n]), variant, target), fam, machine, threads)
        if c.record is not None and space.is_valid(space.complete(c.record["config"])):
            return [(c.record, f", from {n}")]
    return []


def _r(row, a, b):
    return f"{row[b] / row[a]:.2f}x" if row.get(a) and row.get(b) else "-"


def _rate(row, k):
    return f"{row['gflop'] / (row[k] / 1e3):.0f}" if row.get(k) else "-"


def table(rows, machine, threads) -> str:
    """Two markdown tables (int8, bf16): rates in G(FL)OPS and time ratios."""
    L = [f"Machine {machine.kind} ({machine.model}), {threads} threads.", "",
         "| layer | AMX int8 GOPS (dot) | VNNI GOPS | ORT QLinearConv GOPS | torch int8 GOPS | AMX/VNNI | AMX/ORT_q "
         "| AMX/torch |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        L.append(f"| {r['layer']} | {_rate(r, 'int8 amx')} ({r.get('int8 amx dot', '-')}) | {_rate(r, 'int8 vnni')} "
                 f"| {_rate(r, 'ort.qlinearconv')} | {_rate(r, 'torch.qconv')} | {_r(r, 'int8 amx', 'int8 vnni')} "
                 f"| {_r(r, 'int8 amx', 'ort.qlinearconv')} | {_r(r, 'int8 amx', 'torch.qconv')} |")
    L += ["", "| layer | bf16 GFLOPS (dot) | float GFLOPS | ORT fp32 GFLOPS | torch bf16 GFLOPS | bf16/float "
          "| bf16/torch bf16 | bf16 max error vs float (of max abs) |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        L.append(f"| {r['layer']} | {_rate(r, 'bf16')} ({r.get('bf16 dot', '-')}) | {_rate(r, 'float')} "
                 f"| {_rate(r, 'ort.conv')} | {_rate(r, 'torch.conv_bf16')} | {_r(r, 'bf16', 'float')} "
                 f"| {_r(r, 'bf16', 'torch.conv_bf16')} | {r['bf16_err']:.2e} |")
    return "\n".join(L)


if __name__ == "__main__":
    main()
