"""Ratios inside one bench run (time against each base at the same thread count) and % of the measured peak."""

from __future__ import annotations


def add_ratios(rows, peak: dict | None = None):
    """Time ratios within the run, per (workload, threads): >1 means this row is faster than the base.

    ``vs_float`` / ``vs_im2col``: tvmq's float / im2col; ``vs_ort``: onnxruntime fp32 Conv;
    ``vs_ort_q``: onnxruntime QLinearConv; ``vs_torch``: torch (oneDNN) at the row's precision (its
    quantized int8 conv for integer rows, bf16 conv for bf16 rows, fp32 conv otherwise); ``vs_metaschedule``: MetaSchedule's kernel of the same variant.
    ``pct_peak``: % of the measured peak at the same thread count: the AMX int8 or bf16 peak for rows on
    AMX tiles, the int8 (VNNI) peak for other integer rows, each when it was measured, else the fp32 FMA
    peak (``peak_kind`` says which).
    """
    by = {}
    for r in rows:
        by.setdefault((r["workload"], r["threads"]), {})[r["variant"]] = r
    for r in rows:
        peers = by[(r["workload"], r["threads"])]
        for col, base in (("vs_float", "float"), ("vs_im2col", "im2col"), ("vs_ort", "ort.conv"),
                          ("vs_ort_q", "ort.qlinearconv"), ("vs_metaschedule", f"metaschedule.{r['base_variant']}")):
            b = peers.get(base) or (peers.get("im2col_float") if base == "im2col" else None)
            r[col] = b["best_ms"] / r["best_ms"] if b and b.get("best_ms") and r.get("best_ms") else None
        tb = peers.get(_torch_peer(r))
        r["vs_torch"] = tb["best_ms"] / r["best_ms"] if tb and tb.get("best_ms") and r.get("best_ms") else None
        if r["impl"] != "tvmq":
            r["vs_metaschedule"] = None
        pk, r["peak_kind"] = _peak_for(peak, r["threads"], r["unit"] == "GOPS", _amx_kind(r))
        r["peak_gflops"] = pk
        r["pct_peak"] = 100.0 * r["gflops"] / pk if r.get("gflops") and pk else None
    return rows


def _torch_peer(r) -> str:
    if r["unit"] == "GOPS":
        return "torch.qconv"
    return "torch.conv_bf16" if "bf16" in r["base_variant"] else "torch.conv"


def _amx_kind(r) -> str | None:
    """``amx_int8`` / ``amx_bf16`` for a row whose kernel runs on AMX tiles, else None."""
    if not str((r.get("config") or {}).get("dot", "")).startswith("amx"):
        return None
    return "amx_bf16" if "bf16" in r["base_variant"] else "amx_int8"


def _peak_for(peak, threads, integer: bool, amx: str | None = None):
    """(peak G(FL)OPS, kind) at ``threads``: the AMX peak for rows on AMX tiles, the int8 (VNNI) peak
    for other integer rows, each where measured; else the fp32 FMA peak."""
    a = ((peak or {}).get(amx) or {}).get(threads) if amx else None
    if a and a.get("gops"):
        return a["gops"], amx
    i8 = (peak or {}).get("int8")
    if integer and isinstance(i8, dict) and (i8.get(threads) or {}).get("gops"):
        return i8[threads]["gops"], "int8"
    return (((peak or {}).get("fp32") or {}).get(threads) or {}).get("gflops"), "fp32"


def int8_peak_text(peak) -> str:
    i8 = peak.get("int8")
    if isinstance(i8, dict):
        return ", ".join(f"{t} thr: {e['gops']:.0f} GOPS" if e.get("gops") else f"{t} thr: {e.get('status')}"
                         for t, e in sorted(i8.items())) or "-"
    return str(i8)


def _peak_line(peak) -> str:
    parts = []
    for t, e in sorted((peak.get("fp32") or {}).items()):
        parts.append(f"{t} thr: {e['gflops']:.1f} GFLOPS" if e.get("gflops") else f"{t} thr: {e.get('status')}")
    bw = [f"{t} thr: {e['gbps']:.1f} GB/s" for t, e in sorted((peak.get("bandwidth") or {}).items()) if e.get("gbps")]
    amx = [f"{kind[4:]} {t} thr: {e['gops']:.0f}" for kind in ("amx_int8", "amx_bf16")
           for t, e in sorted((peak.get(kind) or {}).items()) if e.get("gops")]
    return (f"measured fp32 peak: {', '.join(parts)}; copy bandwidth: {', '.join(bw) or '-'}; "
            f"int8 peak: {int8_peak_text(peak)}" + (f"; AMX peak (GOPS / GFLOPS): {', '.join(amx)}" if amx else ""))
