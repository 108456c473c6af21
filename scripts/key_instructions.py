"""Key instructions of the best kernels in a log (and of the default schedules), from the assembly.

For issue 8's evidence that the kernels use the intended instructions on a target without
running them (the edge target's code is aarch64: NEON `fmla v.4s` for float, widening `smlal` /
`umlal` / `smull` for int8; x86: `vfmadd*ps`, `vpdpbusd`, `vpmaddubsw`, codebook permutes).

    python scripts/key_instructions.py --target edge --workload alexnet --variants float,int8 \\
        --log autotune_logs/qemu-cortex-a53/edge.jsonl [--md]
"""

from __future__ import annotations

import argparse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="edge")
    ap.add_argument("--workload", default="alexnet")
    ap.add_argument("--variants", default="float,int8")
    ap.add_argument("--log", default=None, help="records file; without it only the default schedules")
    ap.add_argument("--md", action="store_true")
    a = ap.parse_args()
    from tvmq.build.from_log import best_record
    from tvmq.record import log as recordlog
    from tvmq.report import markdown_table, text_table
    from tvmq.report.asm import key_instructions, summary
    from tvmq.targets import get_target
    from tvmq.task import Task
    from tvmq.workload import resolve

    target = get_target(a.target)
    records = recordlog.read(a.log) if a.log else []
    rows = []
    for wl in resolve(a.workload):
        for v in a.variants.split(","):
            task = Task.make(wl, v, target)
            rec = best_record(task, records) if records else None
            for label, cfg in (("default", task.space().default),
                               *((("best of log", task.space().complete(rec["config"])),) if rec else ())):
                rows.append(dict(layer=wl.name, variant=v, schedule=label,
                                 instructions=summary(key_instructions(task, cfg))))
    print((markdown_table if a.md else text_table)(rows, ["layer", "variant", "schedule", "instructions"]))


if __name__ == "__main__":
    main()
