"""Loops in a kernel's assembly: every backward-branch loop, the innermost ones, the hottest.

Works on LLVM's text output for x86-64 (AT&T syntax) and aarch64. A loop is a label and a later
branch back to it; the innermost loops are those that contain no other, and the hottest has the
most arithmetic key instructions, then the most key instructions, then the most instructions.
Used by the explorer (to show it) and the performance model (to time it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .cross import count_instructions

_LABEL = re.compile(r"^(\.?L\w+|\w+):")
_BRANCH = {
    "x86_64": re.compile(r"^\s+j\w+\s+(\.?L\w+)\s*$"),
    "aarch64": re.compile(r"^\s+(?:b(?:\.\w+)?|cbn?z|tbn?z)\s+(?:[wx]\d+,\s*)?(?:#\d+,\s*)?(\.?L\w+)\s*$"),
}
_NOISE = re.compile(r"^\s*(\.loc|\.cfi_|\.file|\.p2align|#|//|\.Ltmp\d+:)")


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


def heat(lp: Loop) -> tuple:
    return (sum(lp.counts.get(k, 0) for k in COMPUTE), sum(lp.counts.values()), len(lp.lines))


def innermost(asm_text: str, arch: str) -> Loop | None:
    """The hottest innermost loop (most arithmetic key instructions, then most key instructions, then
    most instructions), or None."""
    return max(inner_loops(loops(asm_text, arch)), key=heat, default=None)
