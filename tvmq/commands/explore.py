"""``tvmq explore``: why a schedule is fast: its loop nest, inner-loop assembly, roofline and space."""

from __future__ import annotations

from ..errors import TvmqError
from ..explore.explorer import explore


def add_arguments(p):
    p.add_argument("--workload", required=True, help="one layer, e.g. alexnet.conv3")
    p.add_argument("--variant", required=True, help="float, codebook, int8, ... (see README)")
    p.add_argument("--target", default="host", help="target name (targets/NAME.json); records are chosen by it")
    p.add_argument("--logs", default="autotune_logs/",
                   help="a records file or a folder of them; records of any machine are used and the output "
                        "says which machine measured them (default autotune_logs/)")
    p.add_argument("--config", default="best",
                   help="best (fastest record, default), default (the space's default), record:N (N-th fastest) "
                        "or a JSON object of knob values (missing knobs take the default)")
    p.add_argument("--diff", nargs="?", const="default", default=None,
                   help="compare --config (A) with B: best, default (the default when no value), record:N, or a "
                        "JSON object of the knobs to change in A, e.g. '{\"decode_at\": \"oo\"}'")
    p.add_argument("--space", metavar="DIR", default=None,
                   help="also draw the space from the records: PNGs and explore.md into DIR")
    p.add_argument("--heatmap", metavar="KX,KY", default=None,
                   help="the two knobs of the --space heatmap (default tile_ow,ob, else the two that matter most)")
    p.add_argument("--full-script", action="store_true", help="also print the whole annotated TVMScript")
    p.add_argument("--asm-lines", type=int, default=80, help="inner-loop lines to print (default 80)")
    p.add_argument("--peak-gflops", type=float, default=None, help="compute roof instead of the estimate")
    p.add_argument("--bandwidth-gbs", type=float, default=None, help="memory roof instead of the estimate")


def run(a):
    pair = None
    if a.heatmap:
        pair = tuple(k.strip() for k in a.heatmap.split(","))
        if len(pair) != 2:
            raise TvmqError(f"--heatmap {a.heatmap!r}: expected two knob names, e.g. tile_ow,ob")
    print(explore(a.workload, a.variant, a.target, a.logs, a.config, a.diff, a.space, a.full_script,
                  a.asm_lines, a.peak_gflops, a.bandwidth_gbs, pair))
    return 0
