"""Export a compiled kernel as a shared library, cross-linked for another CPU.

An RPC board loads ``.so`` files (``remote.load_module``).  MetaSchedule's
default export is a ``.tar`` the board relinks with its own compiler; the
emulated board has none, so we always hand it a linked ``.so``.
"""

from __future__ import annotations

import os
import re
import shutil

from ..errors import TvmqError


def check_cross_cc(cross_cc: str) -> str:
    """The full path of ``cross_cc``, or a TvmqError that says how to install it."""
    path = shutil.which(cross_cc)
    if not path:
        pkg = cross_cc.rsplit("-", 1)[0] if "-linux-" in cross_cc else cross_cc
        hint = (f"apt-get install {'g++' if cross_cc.endswith('g++') else 'gcc'}-{pkg}"
                if "-linux-" in cross_cc else "install it")
        raise TvmqError(f"cross compiler {cross_cc!r} not found on PATH: run scripts/setup_edge.sh "
                        f"(as root) or {hint}")
    return path


def export_lib(executable, path: str, cross_cc: str | None = None) -> str:
    """Write ``executable`` (what ``tvm.compile`` returns, or a runtime Module) to
    the shared library ``path``; linked with ``cross_cc`` (e.g. ``aarch64-linux-gnu-g++``)
    when given, else with the host's compiler.  Returns ``path``.
    """
    if not str(path).endswith(".so"):
        raise TvmqError(f"export path must end in .so (an RPC board loads shared libraries), got {path!r}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    kw = {}
    if cross_cc:
        kw["cc"] = check_cross_cc(cross_cc)
    try:
        executable.export_library(str(path), **kw)
    except Exception as e:  # noqa: BLE001  (TVM raises RuntimeError from the linker)
        msg = str(e).strip().splitlines()
        raise TvmqError(f"linking {path} with {cross_cc or 'the host compiler'} failed: "
                        f"{msg[-1] if msg else type(e).__name__}") from None
    return str(path)


def _runtime_module(executable):
    return getattr(executable, "mod", executable)


def asm(executable) -> str:
    """The generated assembly of a compiled kernel (LLVM targets), as text."""
    mod = _runtime_module(executable)
    for m in [mod, *getattr(mod, "imports", [])]:
        try:
            text = m.inspect_source("asm")
        except Exception:  # noqa: BLE001  (not an LLVM module)
            continue
        if text:
            return text
    raise TvmqError("no assembly available: the module is not an LLVM CPU module")


# The instructions that matter in the thesis's tables (8.11-8.13), by architecture.
KEY_INSTRUCTIONS = {
    "aarch64": {
        "fma_f32x4": r"\bfmla\s+v\d+\.4s",
        "sdot": r"\bsdot\s+v\d+\.4s",
        "smlal": r"\bsmlal2?\s+v\d+\.(4s|8h)",
        "fmul_f32x4": r"\bfmul\s+v\d+\.4s",
        "umlal": r"\bumlal2?\s+v\d+\.(4s|8h)",
        "smull": r"\bsmull2?\s+v\d+\.(4s|8h)",
        "tbl": r"\btbl\s+v\d+",
    },
    "x86_64": {
        "vfmadd_ps": r"\bvfmadd\d+ps\b",
        "vpdpbusd": r"\bvpdpbusd\b",
        "vpmaddubsw": r"\bvpmaddubsw\b",
        "vpmaddwd": r"\bvpmaddwd\b",
        "vpmulld": r"\bvpmulld\b",
        "vperm": r"\bvperm(?:[it]2)?(?:ps|d)\b",  # table lookups (LLVM may pick the integer domain)
        "vinsertps": r"\bvinsertps\b",
        "vpermb": r"\bvpermb\b",
        "vpinsrb": r"\bvpinsrb\b",
        "tdpbusd": r"\btdpbusd\b",  # Intel AMX tile products (int8, bf16)
        "tdpbf16ps": r"\btdpbf16ps\b",
    },
}


def count_instructions(asm_text: str, arch: str) -> dict[str, int]:
    """How often each key instruction of ``arch`` occurs in ``asm_text``."""
    pats = KEY_INSTRUCTIONS.get(arch, {})
    return {name: len(re.findall(p, asm_text)) for name, p in pats.items()}
