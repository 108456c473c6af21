"""The bench report: results.csv, results.json and report.md (tables, memory, counters, plots)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from .bench_plots import make_plots
from ..report import markdown_table


COLUMNS = ["workload", "variant", "impl", "tuner", "threads", "best_ms", "spread_pct", "gflops", "unit", "pct_peak",
           "vs_float", "vs_im2col", "vs_ort", "vs_ort_q", "vs_torch", "vs_metaschedule", "verified"]


CSV_COLUMNS = ["workload", "workload_key", "variant", "impl", "base_variant", "target", "runner", "emulated", "tuner",
               "trial", "threads", "best_ms", "min_ms", "max_ms", "spread_pct", "gflops", "unit", "pct_peak",
               "peak_gflops", "peak_kind", "vs_float", "vs_im2col", "vs_ort", "vs_ort_q", "vs_torch", "vs_metaschedule", "verified",
               "max_abs_err", "status", "error", "compile_s", "so_bytes", "arg_bytes", "intensity"]


def tuning_curves(records, target, layers) -> list[dict]:
    """Best-so-far GFLOPS against trial, per (layer, variant, tuner), from the records of these layers."""
    tj = json.dumps(target.target, sort_keys=True)
    names = {wl.key: wl for wl in layers}
    groups = {}
    for r in records:
        wl = names.get(r.get("workload_key"))
        if wl is None or r.get("retime") or json.dumps(r.get("target"), sort_keys=True) != tj:
            continue
        groups.setdefault((wl.key, r["variant"], r.get("tuner", "?"), r.get("task_key")), []).append(r)
    out = []
    for (key, variant, tuner, _), recs in groups.items():
        wl = names[key]
        recs.sort(key=lambda r: (r.get("trial") or 0, r.get("timestamp") or 0))
        best, xs, ys = 0.0, [], []
        for i, r in enumerate(recs, 1):
            if r["status"] == "ok" and r.get("times"):
                best = max(best, wl.flops / float(np.median(r["times"])) / 1e9)
            xs.append(r.get("trial") or i)
            ys.append(best)
        out.append(dict(workload=wl.name, variant=variant, tuner=tuner, trials=xs, best_gflops=ys))
    return out


def memory_table(layers) -> list[dict]:
    """Bytes of weights per variant (float, codebook at 1..8 bits incl. its table, int8, int4), im2col extra."""
    out = []
    for wl in layers:
        d = {"workload": wl.name, "float": wl.bytes(32)["weights"]}
        for b in range(1, 9):
            wb = wl.bytes(weight_bits=b, codebook_entries=2 ** b)
            d[f"cb{b}"] = wb["weights"] + wb["codebook"]
        d["int8"] = wl.bytes(8)["weights"]
        d["int4"] = wl.bytes(4)["weights"]
        d["im2col_f32_extra"] = wl.im2col_bytes(4)
        d["im2col_i8_extra"] = wl.im2col_bytes(1)
        out.append(d)
    return out


def _kib(v):
    return "-" if v is None else (f"{v / 1024:.1f}" if v < 1024 * 1024 else f"{v / 2 ** 20:.2f} M")


def write_outputs(out: Path, rows, peak, meta, layers, builds, curves, perf, plots=True):

    with open(out / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items() if k in CSV_COLUMNS})
    (out / "results.json").write_text(json.dumps(dict(meta=meta, peak=_jsonable(peak), rows=json_rows(rows),
                                                      builds=[{k: v for k, v in b.items()
                                                               if k not in ("task", "verifier", "cfg")}
                                                              for b in builds],
                                                      perf=perf, tuning_curves=curves), indent=1, default=str))
    pngs = []
    if plots:
        try:
            pngs = make_plots(out, rows, peak, meta, curves)
        except ImportError:
            meta["notes"].append("matplotlib is not installed: no plots (pip install matplotlib).")
    emu = meta["runner"] == "rpc-emulated"
    L = [f"# tvmq bench: {meta['suite']} on {meta['target']}" + (" (EMULATED)" if emu else ""), ""]
    L += [f"- date {meta['date']}, bench time {meta['bench_s']} s",
          f"- target `{json.dumps(meta['target_json'], sort_keys=True)}`, runner `{meta['runner']}`",
          f"- machine: {meta['machine'].get('cpu', '?')} ({meta['machine'].get('cpus')} CPUs, LLVM cpu "
          f"`{meta['machine'].get('llvm_cpu')}`), {meta['machine']['platform']}, TVM {meta['machine'].get('tvm')}",
          f"- threads {meta['threads']}; measurement {meta['settings']} (median of `repeat` samples; spread = "
          f"(max - min) / median of the samples)",
          f"- tuning records: {meta['logs'] or 'none'} ({meta['records']} records); tvmq rows use the best record "
          "of xgb when there is one, else the best of any tvmq tuner (column `tuner`; `default` = no record, "
          "the space's default schedule)",
          f"- peers: {', '.join(meta['peers']) or 'none'}", ""]
    for n in meta["notes"]:
        L.append(f"> {n}")
    if meta["notes"]:
        L.append("")
    L += ["## Measured peak", "", "fp32 FMA microkernel (" + str(peak.get("kernel")) + ") and a parallel copy "
          "kernel (read + write bytes), both built with TVM, verified, timed like the kernels below"
          + ("; measured before and after the layers" if peak.get("passes", 1) > 1 else "")
          + ". The peak is the best sample (`*_median`: the median of the samples of that pass).", ""]
    prow = []
    for t in sorted(peak.get("fp32") or {}):
        e, bw = peak["fp32"][t], (peak.get("bandwidth") or {}).get(t, {})
        i8 = peak["int8"].get(t, {}) if isinstance(peak.get("int8"), dict) else {}
        prow.append(dict(threads=t, fp32_gflops=e.get("gflops"), fp32_median=e.get("median"), int8_gops=i8.get("gops"),
                         int8_median=i8.get("median"), copy_gbps=bw.get("gbps"),
                         ridge_flop_per_byte=(e["gflops"] / bw["gbps"]) if e.get("gflops") and bw.get("gbps")
                         else None, amx_int8_gops=((peak.get("amx_int8") or {}).get(t) or {}).get("gops"),
                         amx_bf16_gflops=((peak.get("amx_bf16") or {}).get(t) or {}).get("gops"), status=e.get("status")))
    over = [r for r in rows if (r.get("pct_peak") or 0) > 100 and r["unit"] == "GFLOPS"]
    if over:
        top = max(r["pct_peak"] for r in over)
        L += [f"> **Note**: {len(over)} float result(s) exceed the measured fp32 peak (up to {top:.0f}%). Far above "
              "100%, the peak passes were slowed by other load: re-run when the machine is quiet. A few percent "
              "above, the clock differed between the peak pass and the layer (turbo), or the peak kernel falls "
              "short of the machine's limit: read such rows as at peak.", ""]
    amx_cols = ["amx_int8_gops", "amx_bf16_gflops"] if any(r["amx_int8_gops"] for r in prow) else []
    L += [markdown_table(prow, ["threads", "fp32_gflops", "fp32_median", "int8_gops", "int8_median", *amx_cols,
                                "copy_gbps", "ridge_flop_per_byte", "status"]),
          "", (f"int8 peak kernel: {peak['int8_kernel']}; `pct_peak` of integer rows is against it "
               "(`peak_kind`)." if peak.get("int8_kernel") else
               f"int8 peak: {peak['int8']}; `pct_peak` of integer rows is against the fp32 FMA peak."), ""]
    L += ["## Results", "",
          "GFLOPS for float paths, GOPS for integer ones (2 ops per multiply-add). Ratios are time ratios against "
          "the named kernel at the same thread count in this run (> 1: this row is faster): `vs_float` tvmq "
          "float, `vs_im2col` tvmq im2col (float), `vs_ort` onnxruntime fp32 Conv, `vs_ort_q` onnxruntime "
          "QLinearConv, `vs_torch` torch (oneDNN) at the row's precision (quantized int8 conv for integer rows, "
          "bf16 conv for bf16 rows, fp32 conv otherwise; only where torch is installed), `vs_metaschedule` "
          "MetaSchedule's kernel of the same variant.", ""]
    for t in meta["threads"]:
        L += [f"### {t} thread(s)", "", markdown_table([r for r in rows if r["threads"] == t], COLUMNS), ""]
    failed = [r for r in rows if not r["verified"]]
    if failed:
        L += ["### Failed or unverified", "",
              markdown_table(failed, ["workload", "variant", "threads", "status", "error"]), ""]
    L += ["## Memory", "", "Bytes of weights per variant (KiB; M = MiB): float32, codebook at 1..8 bits (indices "
          "plus the 2^b-entry float table), int8, int4; extra bytes of the im2col matrix (fp32 and int8).", ""]
    mcols = ["workload", "float", *[f"cb{b}" for b in range(1, 9)], "int8", "int4", "im2col_f32_extra",
             "im2col_i8_extra"]
    L += [markdown_table([{k: (_kib(v) if k != "workload" else v) for k, v in d.items()} for d in memory_table(layers)],
                         mcols), ""]
    L += ["Generated code and compile time of the kernels built in this run (`arg_bytes`: the kernel's inputs and "
          "output, its working set):", "",
          markdown_table([dict(b, compile_s=round(b["compile_s"], 3)) for b in builds],
                         ["workload", "variant", "so_bytes", "compile_s", "arg_bytes"]), ""]
    L += ["## Hardware counters (`--perf`)", ""]
    if perf is None:
        L += ["Not requested (run with `--perf`).", ""]
    elif not perf.get("available"):
        L += [f"Not available: {perf['why']}.", ""]
    else:
        prs = [dict(r, **{k: r.get(k) for k in ("ipc", "cache_miss_rate")}) for r in perf["rows"]]
        L += [f"{perf['threads']} thread(s), {prs[0].get('iters') if prs else '-'} runs per kernel, minus a "
              "zero-run baseline:", "",
              markdown_table(prs, ["workload", "variant", "ipc", "cache_miss_rate", "instructions_per_run",
                                   "cache-misses_per_run", "L1-dcache-load-misses_per_run",
                                   "LLC-load-misses_per_run", "error"]), ""]
    if pngs:
        L += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in pngs] + [""]
    L += ["## Files", "", "`results.csv` (every row), `results.json` (rows, peak, builds, curves, meta), "
          "`libs/` (the kernels measured)", ""]
    (out / "report.md").write_text("\n".join(L))


def _jsonable(peak):
    return json.loads(json.dumps(peak, default=str))


def json_rows(rows):
    keep = [c for c in CSV_COLUMNS] + ["target_json", "config", "times_s", "peer_info", "record_ms"]
    return [{k: r.get(k) for k in keep if k in r} for r in rows]
