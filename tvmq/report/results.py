"""Result objects shared by ``tune --json`` and ``bench --json``, and speedup columns."""

from __future__ import annotations

from ..variants import rate_unit
from .asm import key_instructions, summary


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


def rows_from_results(results, tuner: str, runner: str) -> list[dict]:
    """``tune``'s table rows from its TuneResults, with the best kernel's key instructions (counted when it
    was built; compiled again only for a best that came from the log, e.g. with ``--resume``)."""
    rows = []
    for res in results:
        row = result_row(res.task, res.best_time, res.trials, res.tuning_s, res.best_config is not None,
                         res.best_err, tuner, runner, res.best_config)
        if res.modelled_best is not None:
            row["modelled_ms"] = res.modelled_best * 1e3
        if res.best_config is not None and tuner != "metaschedule":
            counts = getattr(res, "best_instructions", None)
            row["asm_counts"] = counts if counts is not None else key_instructions(res.task, res.best_config)
            row["instructions"] = summary(row["asm_counts"])
        rows.append(row)
    return rows
