"""Text views: one kernel (config, loop nest and inner-loop assembly side by side, registers,
roofline) and the difference between two kernels."""

from __future__ import annotations

import difflib
import json

from . import roofline

WIDTH = 78  # one column of the side-by-side view


def columns(left: str, right: str, width: int = WIDTH, titles: tuple[str, str] = ("", "")) -> str:
    """Two texts side by side, ``left`` cut or padded to ``width``."""
    a, b = left.splitlines(), right.splitlines()
    rows = [f"{titles[0]:<{width}} | {titles[1]}", f"{'-' * width}-+-{'-' * width}"] if any(titles) else []
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else ""
        x = x if len(x) <= width else x[:width - 1] + ">"
        rows.append(f"{x:<{width}} | {b[i] if i < len(b) else ''}".rstrip())
    return "\n".join(rows)


def counts_text(counts: dict) -> str:
    return " ".join(f"{k}:{v}" for k, v in counts.items() if v) or "(none of the key instructions)"


def time_text(k) -> str:
    if k.seconds is None:
        return "not measured in the logs"
    g = k.roof["gflops"]
    return f"{k.seconds * 1e3:.3f} ms median ({g:.1f} GFLOPS)"


def show(k, task, machine: str, full_script: bool = False) -> str:
    """Everything about one kernel, as text."""
    r = k.asm["registers"]
    head = [f"== {task.workload.name} {task.variant} on target {task.target.name}: {k.label}",
            f"   {machine}",
            f"   compiled for {json.dumps(task.target.target, sort_keys=True)}",
            f"   time: {time_text(k)}",
            "config: " + json.dumps(k.config, sort_keys=True),
            "buffers (layout as the kernel sees it): " + k.extra.get("buffers", "?"), ""]
    side = columns(k.outline, k.asm["loop_text"] or "(no loop found in the assembly)",
                   titles=("loop nest (TVMScript loops, # knob that made each)",
                           f"innermost loop, {k.asm['loop_lines']} instructions (<== key instructions)"))
    regs = (f"registers in the inner loop: {r['vector']} vector, {r['general']} general; stack accesses "
            f"(spills/reloads) in it: {r['stack_accesses']}; in the whole module: {k.asm['kernel_stack_accesses']}")
    body = [side, "",
            "key instructions, inner loop: " + counts_text(k.asm["loop_counts"]),
            "key instructions, whole kernel: " + counts_text(k.asm["kernel_counts"]),
            *(["other innermost loops with key instructions (e.g. a codebook decode stage):"]
              + [f"  {x}" for x in k.asm["other_loops"]] if k.asm["other_loops"] else []),
            regs, "", roofline.text(k.roof)]
    if full_script:
        body += ["", "TVMScript (loops renamed after the template, annotated with knobs):", k.script]
    return "\n".join(head + body)


def diff(a, b, task, machine: str) -> str:
    """What changed from kernel ``a`` to kernel ``b``: config, loop nest, assembly counts, times."""
    out = [f"== diff {task.workload.name} {task.variant} on target {task.target.name}: "
           f"A = {a.label}, B = {b.label}", f"   {machine}", ""]
    keys = sorted(set(a.config) | set(b.config))
    changed = [f"  {key}: {a.config.get(key)!r} -> {b.config.get(key)!r}" for key in keys
               if a.config.get(key) != b.config.get(key)]
    out += ["config changes (A -> B):", *(changed or ["  (none)"]), ""]
    nest = list(difflib.unified_diff(a.outline.splitlines(), b.outline.splitlines(), "A", "B", lineterm="", n=1))
    out += ["loop nest (unified diff of the loops and blocks):", *(nest or ["  (same loop nest)"]), ""]
    out.append(f"{'':34}{'A':>12}{'B':>12}")
    rows = [("time (ms)", *(f"{k.seconds * 1e3:.3f}" if k.seconds else "-" for k in (a, b))),
            ("GFLOPS", *(f"{k.roof['gflops']:.1f}" if k.roof["gflops"] else "-" for k in (a, b)))]
    names = [n for n in a.asm["kernel_counts"] if a.asm["kernel_counts"][n] or b.asm["kernel_counts"].get(n)]
    rows += [(f"{n} (inner loop / kernel)", *(f"{k.asm['loop_counts'].get(n, 0)}/{k.asm['kernel_counts'].get(n, 0)}"
                                              for k in (a, b))) for n in names]
    rows += [("inner-loop instructions", a.asm["loop_lines"], b.asm["loop_lines"]),
             ("inner-loop vector registers", a.asm["registers"]["vector"], b.asm["registers"]["vector"]),
             ("inner-loop stack accesses", a.asm["registers"]["stack_accesses"], b.asm["registers"]["stack_accesses"])]
    out += [f"{name:34}{x!s:>12}{y!s:>12}" for name, x, y in rows]
    if a.seconds and b.seconds:
        out.append(f"B is {a.seconds / b.seconds:.2f}x the speed of A (measured, records' machine)")
    return "\n".join(out)
