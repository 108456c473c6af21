"""The scheduled loop nest as TVMScript, its loops named after the knobs that made them.

TVM names split loops ``y_0``/``y_1``; the templates call them ``y_o``/``y_i`` (the outer loop and
the register tile). The script is renamed that way and each ``for`` is annotated with the knob
behind it, e.g. ``for x_i in T.unroll(13):  # tile_ow=13``.
"""

from __future__ import annotations

import re

# TVM's names for the split loops -> the template's names (tvmq/templates/conv2d_direct.py).
RENAMES = {"y_0": "y_o", "y_1": "y_i", "x_0": "x_o", "x_1": "x_i"}
_FOR = re.compile(r"^(\s*)for (.+?) in (.*?):\s*$")
_SBLOCK = re.compile(r'^(\s*)with T\.sblock\("([^"]+)"\)')


def rename(script: str) -> str:
    """``script`` with TVM's split-loop names replaced by the template's (whole words only)."""
    for old, new in RENAMES.items():
        script = re.sub(rf"\b{old}(_init)?\b", lambda m, new=new: new + (m.group(1) or ""), script)
        # inside fused loop names too: n_oo_y_0_fused -> n_oo_y_o_fused
        script = re.sub(rf"\b(\w*_)?{old}(_(?:\w*_)?fused)\b",
                        lambda m, new=new: (m.group(1) or "") + new + m.group(2), script)
    return script


def knob_of(var: str, kind: str, cfg: dict) -> str:
    """The knob(s) behind one loop variable of the direct template (empty when none)."""
    v = var.removesuffix("_init")
    notes = []
    if v.endswith("_fused") and "parallel" in kind:
        notes.append(f"parallel_depth={cfg.get('parallel_depth')}")
    table = {
        "y_i": f"tile_oh={cfg.get('tile_oh')}", "x_i": f"tile_ow={cfg.get('tile_ow')}",
        "y_o": "out_h / tile_oh", "x_o": "out_w / tile_ow",
        "oi": f"ob={cfg.get('ob')}", "ci": f"ib={cfg.get('ib')}", "ici": f"ib={cfg.get('ib')}",
        "co": "c_in / ib", "ico": "c_in / ib", "oo": "c_out / ob",
        "r": "kernel rows", "s": "kernel cols",
    }
    if "cb" in cfg:  # the grouped template (tvmq/templates/conv2d_grouped.py): one channel block
        table.update(oi=f"cb={cfg['cb']}", oo="c_out / cb", rc="c_in / groups")
    if v in table:
        notes.append(table[v])
    if kind.startswith("T.unroll") and v in ("r", "s"):
        notes.append(f"unroll={cfg.get('unroll')}")
    if kind.startswith("T.vectorized") and v in ("oi", "x_i") and "vector" in cfg:
        notes.append(f"vector={cfg.get('vector')}")
    return ", ".join(notes)


def annotate(script: str, cfg: dict) -> str:
    """Each ``for`` line of ``script`` (already renamed) with a comment naming its knobs."""
    out = []
    for line in script.splitlines():
        m = _FOR.match(line)
        if m:
            vars_ = [v.strip() for v in m.group(2).split(",")]
            notes = [f"{v}: {n}" if len(vars_) > 1 else n for v in vars_ if (n := knob_of(v, m.group(3), cfg))]
            if notes:
                line = f"{line}  # {'; '.join(notes)}"
        out.append(line)
    return "\n".join(out)


def outline(script: str) -> str:
    """Only the loops and block names of an annotated script: the loop nest at a glance."""
    keep = []
    for line in script.splitlines():
        if _FOR.match(line.split("  #")[0]):
            keep.append(line.replace("    ", "  "))
        elif (m := _SBLOCK.match(line)):
            keep.append(f"{m.group(1)}block {m.group(2)}".replace("    ", "  "))
        elif "call_llvm_pure_intrin" in line or "T.call_llvm" in line:
            intrin = re.search(r'"(llvm\.[\w.]+)"', line)
            indent = re.match(r"\s*", line).group(0)
            keep.append(f"{indent}  -> {intrin.group(1) if intrin else 'llvm intrinsic'}".replace("    ", "  "))
    return "\n".join(keep)


def scheduled_script(sch, cfg: dict) -> str:
    """The schedule's module as TVMScript, renamed and annotated."""
    return annotate(rename(sch.mod.script()), cfg)


def loop_signature(outline_text: str) -> list[str]:
    """The outline's lines without indentation: what ``diff`` compares."""
    return [ln.strip() for ln in outline_text.splitlines() if ln.strip()]
