"""A source folder for a transfer run that also knows this machine's other layers (docs/TUNING.md, Zen 3).

The transfer experiment's strict protocol starts a pair from the other machines' logs only. A user who
tunes a suite or a model on a new machine has, from the second layer on, this machine's own records of
the layers before it. This writes such a folder: the other machines' logs as they are, plus every record
this machine measured (``--this``, all its logs) of any layer but the one left out (every variant of it).

    python scripts/transfer_sources.py --out out/xfer_loo/conv5 --leave-out alexnet.conv5 \
        --this autotune_logs/amd-znver3-2c autotune_logs/amd-znver4-2c autotune_logs/amd-znver5-2c ...
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tvmq.record.log import read_dir  # noqa: E402
from tvmq.workload import resolve  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="the folder to write (replaced)")
    p.add_argument("--leave-out", required=True, help="the layer whose records of this machine are left out")
    p.add_argument("--this", required=True, help="this machine's log folder (autotune_logs/KIND)")
    p.add_argument("others", nargs="+", help="the other machines' log files or folders, copied as they are")
    a = p.parse_args(argv)
    out = Path(a.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for i, src in enumerate(map(Path, a.others)):
        files = [src] if src.is_file() else sorted(src.rglob("*.jsonl"))
        if not files:
            sys.exit(f"transfer_sources: no .jsonl log in {src}")
        for j, f in enumerate(files):
            shutil.copy(f, out / f"other{i}-{j}.jsonl")
    key = resolve(a.leave_out)[0].key
    mine = [r for r in read_dir(a.this, warn=False) if r.get("workload_key") != key]
    with open(out / "this-machine.jsonl", "w") as f:
        for r in mine:
            f.write(json.dumps(r) + "\n")
    print(f"{out}: {len(a.others)} other machine log(s), {len(mine)} records of this machine without {a.leave_out}")


if __name__ == "__main__":
    main()
