"""The innermost loop of a kernel's assembly, its key instructions marked, registers and spills.

Works on LLVM's text output for x86-64 (AT&T syntax) and aarch64. A loop is a label and a later
branch back to it; the innermost loops are those that contain no other, and the one shown is the
hottest: the most key instructions (vector FMAs, ``vpdpbusd``, permutes, ``fmla``/``smlal``), then
the longest.
"""

from __future__ import annotations

import re

from ..build.cross import KEY_INSTRUCTIONS, count_instructions
from ..build.loops import Loop, heat, inner_loops, instructions, loops

# Stack-relative memory operands: spills and reloads inside a loop.
_STACK = {"x86_64": re.compile(r"\(%rsp\)|\(%rsp,"), "aarch64": re.compile(r"\[sp\b|\[x29\b")}
_REGS = {
    "x86_64": {"vector": re.compile(r"%[xyz]mm(\d+)"),
               "general": re.compile(r"%(r(?:[abcd]x|[sd]i|bp|\d+)[dwb]?|e(?:[abcd]x|[sd]i|bp)|[abcd]l)\b")},
    "aarch64": {"vector": re.compile(r"\b[vqdsbh](\d+)(?:\.\d*[bhsd])?\b"), "general": re.compile(r"\b[xw](\d+)\b")},
}
MARK = "  <== "


def label(lp: Loop) -> str:
    return lp.lines[0].rstrip(":") if lp.lines else "?"


def mark(lines: list[str], arch: str) -> list[str]:
    """``lines`` with each key instruction marked ``<== name``."""
    pats = {name: re.compile(p) for name, p in KEY_INSTRUCTIONS.get(arch, {}).items()}
    out = []
    for ln in lines:
        hits = [name for name, p in pats.items() if p.search(ln)]
        out.append(f"{ln.expandtabs(8):<48}{MARK}{', '.join(hits)}" if hits else ln.expandtabs(8))
    return out


def registers(lines: list[str], arch: str) -> dict[str, int]:
    """Distinct vector and general registers the lines use, and their stack accesses (spills/reloads)."""
    text = "\n".join(lines)
    regs = _REGS.get(arch, _REGS["x86_64"])
    out = {kind: len(set(p.findall(text))) for kind, p in regs.items()}
    stack = _STACK.get(arch, _STACK["x86_64"])
    out["stack_accesses"] = sum(1 for ln in lines if stack.search(ln))
    return out


def summary(asm_text: str, arch: str, limit: int = 80) -> dict:
    """What the explorer shows of a kernel's assembly: the whole kernel's key-instruction counts,
    the hottest innermost loop (marked, at most ``limit`` lines), its counts and registers."""
    inner = inner_loops(loops(asm_text, arch))
    loop = max(inner, key=heat, default=None)
    others = [f"{label(lp)} ({len(lp.lines)} instructions): "
              + " ".join(f"{k}:{v}" for k, v in lp.counts.items() if v)
              for lp in inner if lp is not loop and any(lp.counts.values())]
    body = loop.lines if loop else []
    shown = mark(body[:limit], arch) + ([f"    ... {len(body) - limit} more lines"] if len(body) > limit else [])
    return {
        "kernel_counts": count_instructions(asm_text, arch),
        "loop_counts": loop.counts if loop else {},
        "loop_lines": len(body),
        "loop_text": "\n".join(shown),
        "registers": registers(body, arch),
        "other_loops": others,
        "kernel_stack_accesses": registers(instructions(asm_text.splitlines()), arch)["stack_accesses"],
    }
