"""The edge table of issue 14 from ``scripts/edge_models.sh``'s folder: per model and quantization,
whether the export ran on the emulated Cortex-A53 and agreed with onnxruntime, how many convolutions
run on tvmq kernels, and the library's NEON multiply-add instructions.

    python scripts/edge_table.py out/edge
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

NEON = ("fmla", "smlal", "smlal2", "sdot")


def row(d: Path) -> str:
    model, quant = d.name.rsplit("-", 1) if not d.name.endswith("kmeans_int8") else (d.name[:-12], "kmeans_int8")
    man = json.loads((d / "manifest.json").read_text())["model"]
    layers = man["layers"]
    on = sum(1 for L in layers if L.get("kernel"))
    run = json.loads((d / "run.json").read_text()) if (d / "run.json").exists() else None
    cmp = (run or {}).get("compare_onnx") or {}
    kernels = "-" if run is None else f"{sum(k['ok'] for k in run['kernels'])}/{len(run['kernels'])}"
    agree = ("ok" if cmp.get("ok") else "FAIL") + (f" ({cmp['relative']:.1e} <= {cmp.get('bound', cmp.get('tolerance')):.2g})"
                                                  if "relative" in cmp else "")
    counts = {}
    if (d / "neon.txt").exists():
        for line in (d / "neon.txt").read_text().split("\n"):
            if line.strip():
                n, op = line.split()
                counts[op] = counts.get(op, 0) + int(n)
    neon = ", ".join(f"{op} {counts[op]}" for op in NEON if counts.get(op)) or "-"
    return (f"| {model} | {quant} | {on}/{len(layers)} | {kernels} | {agree if run else '-'} | {neon} "
            f"| {json.loads((d / 'manifest.json').read_text())['files']['lib']['bytes'] / 1e6:.1f} |")


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "out/edge")
    dirs = sorted(p.parent for p in root.glob("*/manifest.json"))
    print("| model | quantize | convs on tvmq kernels | kernels = numpy, on the board | output vs onnxruntime "
          "(relative, bound) | NEON multiply-adds in lib.so | lib.so MB |")
    print("|---|---|---|---|---|---|---|")
    for d in dirs:
        print(row(d))


if __name__ == "__main__":
    main()
