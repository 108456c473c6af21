"""What the build stage hands the runners: a compiled candidate, or why it is not one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class BuildResult:
    """A compiled candidate (or why it is not one)."""

    config: dict
    status: str  # "ok", "build_error" or "invalid"
    lib_path: str | None = None
    error: str = ""
    compile_s: float = 0.0
    asm_path: str | None = None  # the kernel's assembly, when the builder was asked for it (performance model)
    instructions: dict | None = None  # its key instructions (build/cross.count_instructions), counted at build time
