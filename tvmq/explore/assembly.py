"""The innermost loop of a kernel's assembly, its key instructions marked, registers and spills.

Works on LLVM's text output for x86-64 (AT&T syntax) and aarch64. A loop is a label and a later
branch back to it; the innermost loops are those that contain no other, and the one shown is the
hottest: the most key instructions (vector FMAs, ``vpdpbusd``, permutes, ``fmla``/``smlal``), then
the longest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..build.cross import KEY_INSTRUCTIONS, count_instructions

_LABEL = re.compile(r"^(\.?L\w+|\w+):")
_BRANCH = {
    "x86_64": re.compile(r"^\s+j\w+\s+(\.?L\w+)\s*$"),
    "aarch64": re.compile(r"^\s+(?:b(?:\.\w+)?|cbn?z|tbn?z)\s+(?:[wx]\d+,\s*)?(?:#\d+,\s*)?(\.?L\w+)\s*$"),
}
# Stack-relative memory operands: spills and reloads inside a loop.
_STACK = {"x86_64": re.compile(r"\(%rsp\)|\(%rsp,"), "aarch64": re.compile(r"\[sp\b|\[x29\b")}
_REGS = {
    "x86_64": {"vector": re.compile(r"%[xyz]mm(\d+)"),
               "general": re.compile(r"%(r(?:[abcd]x|[sd]i|bp|\d+)[dwb]?|e(?:[abcd]x|[sd]i|bp)|[abcd]l)\b")},
    "aarch64": {"vector": re.compile(r"\b[vqdsbh](\d+)(?:\.\d*[bhsd])?\b"), "general": re.compile(r"\b[xw](\d+)\b")},
}
_NOISE = re.compile(r"^\s*(\.loc|\.cfi_|\.file|\.p2align|#|//|\.Ltmp\d+:)")
MARK = "  <== "


@dataclass
class Loop:
    start: int  # line index of the label
    end: int  # line index of the branch back
    lines: list[str]
    counts: dict[str, int]


def instructions(lines: list[str]) -> list[str]:
    """The lines that are instructions or labels (no debug directives, comments, local tmp labels)."""
    return [ln.rstrip() for ln in lines if ln.strip() and not _NOISE.match(ln)]


def loops(asm_text: str, arch: str) -> list[Loop]:
    """Every backward-branch loop of the text (a label and a later branch back to it)."""
    lines = asm_text.splitlines()
    where = {}
    found = []
    branch = _BRANCH.get(arch, _BRANCH["x86_64"])
    for i, ln in enumerate(lines):
        m = _LABEL.match(ln)
        if m:
            where[m.group(1)] = i
            continue
        b = branch.match(ln)
        if b and b.group(1) in where:
            start = where[b.group(1)]
            body = instructions(lines[start:i + 1])
            found.append(Loop(start, i, body, count_instructions("\n".join(body), arch)))
    return found


def inner_loops(found: list[Loop]) -> list[Loop]:
    """The loops that contain no other loop."""
    return [lp for lp in found if not any(o is not lp and lp.start <= o.start and o.end <= lp.end for o in found)]


# Key instructions that do the convolution's arithmetic (rather than move or look up data).
COMPUTE = ("vfmadd_ps", "vpdpbusd", "vpmaddubsw", "vpmaddwd", "vpmulld", "fma_f32x4", "sdot", "smlal", "umlal",
           "smull", "fmul_f32x4")


def _heat(lp: Loop) -> tuple:
    return (sum(lp.counts.get(k, 0) for k in COMPUTE), sum(lp.counts.values()), len(lp.lines))


def innermost(asm_text: str, arch: str) -> Loop | None:
    """The hottest innermost loop (most arithmetic key instructions, then most key instructions, then
    most instructions), or None."""
    return max(inner_loops(loops(asm_text, arch)), key=_heat, default=None)


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
    loop = max(inner, key=_heat, default=None)
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
