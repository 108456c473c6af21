"""The whole-model table from scripts/model_bench.sh's results (docs/MODELS.md, issue 14).

    python scripts/model_table.py out/models
    python scripts/model_table.py --runs out/run1 out/run2 ...   (each export's ratios per run, and their median)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _f(v, d=2):
    return f"{v:.{d}f}" if isinstance(v, (int, float)) else "-"


def ratios(root: Path) -> dict:
    """export name -> (tvmq vs onnxruntime fp32, vs onnxruntime int8) of one run."""
    out = {}
    for res in sorted(root.glob("*/bench/results.json")):
        r = json.loads(res.read_text())
        t = r.get("tvmq_ms")
        out[res.parent.parent.name] = tuple(r[k] / t if t and r.get(k) else None
                                            for k in ("onnxruntime_ms", "onnxruntime_int8_ms"))
    return out


def runs_table(roots: list[Path]) -> None:
    import statistics

    runs = [ratios(r) for r in roots]
    names = sorted(set().union(*runs))
    cols = ", ".join(str(i + 1) for i in range(len(runs)))
    print(f"| export | vs onnxruntime fp32 (runs {cols}) | median | vs onnxruntime int8 (runs {cols}) | median |")
    print("|---|---|---|---|---|")
    for n in names:
        cells = []
        for k in (0, 1):
            vs = [run[n][k] for run in runs if n in run and run[n][k] is not None]
            cells += [", ".join(_f(v) for v in vs), f"**{_f(statistics.median(vs))}x**" if vs else "-"]
        print(f"| {n} | {' | '.join(cells)} |")


def _mem(r: dict) -> str:
    """Each side's peak memory rise (bench.memory), MB."""
    keys = ("tvmq_mem_bytes", "onnxruntime_mem_bytes", "onnxruntime_int8_mem_bytes", "relax_untuned_mem_bytes")
    return ", ".join(_f(r[k] / 2**20, 1) if isinstance(r.get(k), (int, float)) else "-" for k in keys)


def _top1(r: dict) -> str:
    keys = ("top1_tvmq", "top1_onnx_float", "top1_onnxruntime_int8")
    return ", ".join(_f(r.get(k), 3) for k in keys) if r.get("top1_tvmq") is not None else "-"


def main(argv=None) -> int:
    argv = argv if argv is not None else sys.argv[1:]
    if argv and argv[0] == "--runs":
        runs_table([Path(a) for a in argv[1:]])
        return 0
    root = Path((argv or ["out/models"])[0])
    rows = []
    for res in sorted(root.glob("*/bench/results.json")):
        r = json.loads(res.read_text())
        model, quant = res.parent.parent.name.rsplit("-", 1) if "-" in res.parent.parent.name else (res.parent.parent.name, "?")
        man = json.loads((res.parent.parent / "manifest.json").read_text())
        layers = man.get("model", {}).get("layers") or []
        on_tvmq = sum(1 for L in layers if L.get("kernel"))
        kinds = (r.get("breakdown") or {}).get("kinds") or []
        rows.append(dict(model=model, quant=quant, r=r, layers=f"{on_tvmq}/{len(layers)}" if layers else "-",
                         top=", ".join(f"{k['kind']} {100 * k['share']:.0f}%" for k in kinds[:3])))
    print("| model | export | tvmq ms | onnxruntime fp32 ms | onnxruntime int8 ms | Relax untuned ms "
          "| vs ort fp32 | vs ort int8 | float onnx / (lib + weights) | float onnx / weights "
          "| peak memory MB (tvmq, ort fp32, ort int8, Relax) | top-1 (tvmq, ort fp32, ort int8) "
          "| convs on tvmq kernels | where the time goes |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for x in rows:
        r = x["r"]
        t = r.get("tvmq_ms")
        q = "float" if x["quant"] == "none" else x["quant"] + (f" {r['bits']}-bit" if r.get("bits") else "")
        print(f"| {x['model']} | {q} | {_f(t, 3)} | {_f(r.get('onnxruntime_ms'), 3)} | {_f(r.get('onnxruntime_int8_ms'), 3)} "
              f"| {_f(r.get('relax_untuned_ms'), 3)} "
              f"| {_f(r['onnxruntime_ms'] / t if t and r.get('onnxruntime_ms') else None)}x "
              f"| {_f(r['onnxruntime_int8_ms'] / t if t and r.get('onnxruntime_int8_ms') else None)}x "
              f"| {_f(r['onnx_bytes'] / r['tvmq_bytes'] if r.get('tvmq_bytes') and r.get('onnx_bytes') else None, 1)}x "
              f"| {_f(r['onnx_bytes'] / r['tvmq_weights_bytes'] if r.get('tvmq_weights_bytes') else None, 1)}x "
              f"| {_mem(r)} | {_top1(r)} | {x['layers']} | {x['top']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
