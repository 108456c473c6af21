"""The quantize command's table and report: per-layer error, compression and accuracy."""

from __future__ import annotations

import math


def report(mq, ev, model_path, out) -> dict:
    layers = [{**r.meta, **r.report, "name": r.layer.name, "op": r.layer.op, "tensor": r.layer.tensor}
              for r in mq.layers]
    return dict(model=model_path, spec=mq.spec.__dict__, folded_batchnorm=mq.folded, layers=layers,
                total=mq.total(), eval=ev, out=str(out))


COLUMNS = [("layer", 10, "s"), ("op", 6, "s"), ("shape", 13, "s"), ("method", 22, "s"), ("bits", 4, "s"),
           ("NRMSE", 9, ".3e"), ("SQNR dB", 7, ".1f"), ("max diff", 9, ".3e"), ("sparsity", 8, ".3f"),
           ("distinct", 8, "d"), ("unique kernels", 14, "s"), ("bytes", 7, "d"), ("formula", 9, ".1f"),
           ("packed", 7, "d"), ("r formula", 9, ".2f"), ("r packed", 8, ".2f")]


def _cells(name, op, shape, method, bits, rep) -> list:
    uk = rep.get("unique_kernels")
    ukc = f"{uk['unique']}/{uk['total']} x{uk['max_repeat']}" if uk else "-"
    return [name, op, shape, method, bits, rep["nrmse"], rep["sqnr_db"], rep["max_abs_diff"], rep["sparsity"],
            rep["distinct"], ukc, rep["bytes_before"], rep["bytes_formula"], rep["bytes_packed"],
            rep["ratio_formula"], rep["ratio_packed"]]


def _fmt(v, width, spec) -> str:
    if isinstance(v, float) and not math.isfinite(v):
        return f"{'inf' if v > 0 else '-inf':>{width}}"
    if spec == "s":
        return f"{str(v):<{width}}" if not isinstance(v, (int, float)) else f"{str(v):>{width}}"
    return f"{v:>{width}{spec}}"


def _row(cells, act=None) -> str:
    line = "  ".join(_fmt(v, w, s) for v, (_, w, s) in zip(cells, COLUMNS))
    return line + (f"  {act:>10.3f}" if act is not None else "")


def format_table(mq, ev=None) -> str:
    """Per-layer table plus the model total (and top-1 if evaluated)."""
    head = "  ".join(f"{n:<{w}}" if s == "s" else f"{n:>{w}}" for n, w, s in COLUMNS)
    head += "  act sparse" if ev else ""
    bits = f"{mq.spec.bits}"
    lines = [head, "-" * len(head)]
    for r in mq.layers:
        shape = "x".join(map(str, r.layer.array.shape))
        b = f"{bits}" + (f".{r.report['frac']}" if "frac" in r.report else "")
        lines.append(_row(_cells(r.layer.name, r.layer.op, shape, _method(mq.spec), b, r.report),
                          r.report.get("act_sparsity")))
    t = mq.total()
    lines.append("-" * len(head))
    lines.append(_row(_cells("total", "", f"{t['weights']} w", _method(mq.spec), bits, t)))
    notes = []
    if mq.folded:
        notes.append(f"folded BatchNormalization into {', '.join(mq.folded)}")
    sat = sum(r.report["saturated"] for r in mq.layers)
    if sat:
        notes.append(f"{sat} weights saturated")
    if mq.spec.method == "fixed":
        notes.append("bits column is W.F")
    if ev:
        notes.append(f"top-1 on {ev['samples']} samples: float {ev['float_top1']:.4f}  "
                     f"quantized {ev['quant_top1']:.4f}")
    return "\n".join(lines + notes)


def _method(spec) -> str:
    return spec.label() + ("/ch" if spec.per_channel else "")
