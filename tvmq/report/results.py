"""Result objects shared by ``tune --json`` and ``bench --json``, and speedup columns."""

from __future__ import annotations

# Integer variants count operations, not floating-point ones: their rate is in GOPS.
INT_VARIANTS = frozenset({"int8", "int8w7", "codebook_int8", "int16", "int4", "im2col_int8"})


def rate_unit(variant: str) -> str:
    """``GOPS`` for integer variants, ``GFLOPS`` otherwise (2 operations per multiply-add in both)."""
    return "GOPS" if variant in INT_VARIANTS else "GFLOPS"


def result_row(task, best_time: float, trials: int, tuning_s: float, verified: bool, max_abs_err, tuner: str,
               runner: str, config=None) -> dict:
    wl = task.workload
    ok = best_time < float("inf")
    return {
        "workload": wl.name,
        "workload_key": wl.key,
        "variant": task.variant,
        "params": task.params,
        "target": task.target.name,
        "target_json": task.target.target,
        "tuner": tuner,
        "best_ms": best_time * 1e3 if ok else None,
        "gflops": wl.flops / best_time / 1e9 if ok else None,
        "unit": rate_unit(task.variant),
        "trials": trials,
        "tuning_s": round(tuning_s, 1),
        "verified": bool(verified),
        "max_abs_err": max_abs_err,
        "emulated": runner == "rpc-emulated",
        "runner": runner,
        "config": config,
    }


def add_speedups(rows: list[dict]):
    """Add ``vs_float`` and ``vs_im2col`` (time ratios within the same run, per workload)."""
    by = {}
    for r in rows:
        by.setdefault(r["workload"], {})[r["variant"]] = r
    for r in rows:
        peers = by[r["workload"]]
        for col, base in (("vs_float", "float"), ("vs_im2col", "im2col")):
            b = peers.get(base) or peers.get(base + "_float")
            if b and b.get("best_ms") and r.get("best_ms"):
                r[col] = b["best_ms"] / r["best_ms"]
            else:
                r[col] = None
    return rows
