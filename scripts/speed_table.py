"""Issue 8's table from bench results: each quantized variant as a speed ratio to tvmq float and to
its peers, all taken in the same bench run (per thread count).

    python scripts/speed_table.py out/bench-host-alexnet/results.json [--threads 2] [--md]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict


def fmt(v, nd=2):
    return "-" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results", nargs="+", help="results.json files written by `tvmq bench`")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--md", action="store_true")
    a = ap.parse_args()
    from tvmq.report import markdown_table, text_table

    rows = []
    for path in a.results:
        try:
            res = json.loads(open(path).read())
        except (OSError, json.JSONDecodeError) as e:
            raise SystemExit(f"speed_table: cannot read bench results {path!r}: {e}") from None
        by = defaultdict(dict)
        for r in res["rows"]:
            if r["threads"] == a.threads:
                by[r["workload"]][r["variant"]] = r
        for layer, v in by.items():
            fl = v.get("float")
            for name, r in v.items():
                if r["impl"] != "tvmq" or name == "float" or r.get("status") != "ok":
                    continue
                peer = v.get("ort.qlinearconv") if r["unit"] == "GOPS" else v.get("ort.conv")
                rows.append(dict(target=r["target"], layer=layer, variant=name, tuner=r.get("tuner"),
                                 G=fmt(r["gflops"], 1), unit=r["unit"], pct_peak=fmt(r.get("pct_peak"), 0),
                                 float_G=fmt(fl and fl["gflops"], 1), vs_float=fmt(r.get("vs_float")),
                                 peer=peer and peer["variant"], vs_peer=fmt(r.get("vs_ort_q") if r["unit"] == "GOPS"
                                                                           else r.get("vs_ort")),
                                 vs_metaschedule=fmt(r.get("vs_metaschedule")), verified=r.get("verified")))
    cols = ["target", "layer", "variant", "tuner", "G", "unit", "pct_peak", "float_G", "vs_float", "peer", "vs_peer",
            "vs_metaschedule", "verified"]
    print((markdown_table if a.md else text_table)(rows, cols))


if __name__ == "__main__":
    main()
