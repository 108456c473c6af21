"""``manifest.json`` of an export: what was built, for which target, from which records.

Checked before anything is loaded: the library's and the weights' sha256 (a tampered or
truncated file is refused), the TVM version (a library from another TVM is refused), and
the target (a library for another CPU is refused before the loader would crash on it).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path

from ..errors import TvmqError
from . import LIB_NAME, MANIFEST_NAME, WEIGHTS_NAME
from .. import __version__
from ..targets import TargetInfo, get_target
import numpy as np

FORMAT = "tvmq-export/1"


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def versions() -> dict:
    import tvm  # lazy: heavy (TVM)


    return {"tvmq": __version__, "tvm": tvm.__version__}


def make(kind: str, target, functions: list[dict], out_dir, **extra) -> dict:
    """The manifest of an export whose library (and weights, if any) are already in ``out_dir``."""
    out = Path(out_dir)
    files = {"lib": {"path": LIB_NAME, "sha256": sha256_file(out / LIB_NAME),
                     "bytes": (out / LIB_NAME).stat().st_size}}
    if (out / WEIGHTS_NAME).is_file():
        files["weights"] = {"path": WEIGHTS_NAME, "sha256": sha256_file(out / WEIGHTS_NAME),
                            "bytes": (out / WEIGHTS_NAME).stat().st_size}
    return {
        "format": FORMAT,
        "kind": kind,
        "versions": versions(),
        "target": {"name": target.name, "target": target.target, "arch": target.arch,
                   "requires_features": list(target.requires_features), "cross_cc": target.cross_cc,
                   "rpc_key": target.rpc_key},
        "files": files,
        "functions": functions,
        **extra,
    }


def write(out_dir, man: dict) -> Path:
    p = Path(out_dir) / MANIFEST_NAME
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(man, indent=1, sort_keys=False, default=_jsonable) + "\n")
    os.replace(tmp, p)
    return p


def _jsonable(o):

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, (tuple, set)):
        return list(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def read(export_dir) -> dict:
    """The manifest of ``export_dir``; TvmqError when the folder or the manifest is missing or malformed."""
    d = Path(export_dir)
    if not d.is_dir():
        raise TvmqError(f"{str(export_dir)!r} is not a directory (expected a `tvmq export --out` folder)")
    p = d / MANIFEST_NAME
    if not p.is_file():
        raise TvmqError(f"{str(export_dir)!r} has no {MANIFEST_NAME}: not a tvmq export")
    try:
        man = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise TvmqError(f"{p}: not valid JSON ({e})") from None
    if not isinstance(man, dict) or man.get("format") != FORMAT:
        got = man.get("format") if isinstance(man, dict) else type(man).__name__
        raise TvmqError(f"{p}: format {got!r} is not {FORMAT!r} (exported by another tvmq?)")
    for k in ("kind", "versions", "target", "files", "functions"):
        if k not in man:
            raise TvmqError(f"{p}: missing key {k!r}")
    return man


def check_files(export_dir, man: dict):
    """Every file the manifest lists exists and has its recorded sha256."""
    d = Path(export_dir)
    for role, f in man["files"].items():
        path = d / f["path"]
        if not path.is_file():
            raise TvmqError(f"{role} file {str(path)!r} is missing")
        got = sha256_file(path)
        if got != f["sha256"]:
            raise TvmqError(f"{role} file {str(path)!r} does not match its manifest (sha256 {got[:12]}... "
                            f"!= {f['sha256'][:12]}...): the file was modified or replaced; export again")


def check_versions(man: dict, strict_tvmq: bool = False) -> list[str]:
    """TvmqError if the library was built by another TVM; returns warnings (other tvmq version)."""
    have = versions()
    want = man["versions"]
    if want.get("tvm") != have["tvm"]:
        raise TvmqError(f"the library was built with TVM {want.get('tvm')} but this runtime is TVM {have['tvm']}; "
                        f"export it again with this TVM (or install apache-tvm=={want.get('tvm')})")
    if want.get("tvmq") != have["tvmq"]:
        msg = f"exported by tvmq {want.get('tvmq')}, running tvmq {have['tvmq']}"
        if strict_tvmq:
            raise TvmqError(msg)
        return [msg]
    return []


def check_target(man: dict, expect: str | None = None, remote: bool = False, remote_arch: str | None = None):
    """Refuse a library built for another target.

    ``expect``: the target name the user says this is (``--target``); it must match, and so
    must the full target (a re-detected ``host`` is compared by its CPU). Locally (not
    ``remote``) the library's architecture and required CPU features must be this machine's.
    """

    t = man["target"]
    name = t.get("name")
    if expect is not None:
        if expect != name:
            raise TvmqError(f"the library was built for target {name!r} ({_describe(t)}), not {expect!r}; "
                            f"export it again with --target {expect}")
        mine = get_target(expect)
        if mine.target != t["target"]:
            raise TvmqError(f"the library was built for target {name!r} as {json.dumps(t['target'], sort_keys=True)}"
                            f" but here {expect!r} is {json.dumps(mine.target, sort_keys=True)}; export it again here")
    if remote:
        if remote_arch and t.get("arch") != remote_arch:
            raise TvmqError(f"the library was built for target {name!r} ({_describe(t)}) but the board is "
                            f"{remote_arch}: export it again with --target edge")
        return
    if t["arch"] != platform.machine():
        raise TvmqError(f"the library is {t['arch']} code for target {name!r} and this machine is {platform.machine()}: "
                        f"run it on the board (tvmq run DIR --rpc-tracker HOST:PORT --rpc-key KEY)")
    info = TargetInfo(name=name, target=t["target"], arch=t["arch"],
                      requires_features=tuple(t.get("requires_features", ())))
    why = info.local_problem()
    if why:
        raise TvmqError(f"the library was built for {why.removeprefix('target ')}; export it again for this "
                        f"machine (--target host)")
    if name == "host":
        here = get_target("host").target.get("mcpu")
        if t["target"].get("mcpu") != here:
            raise TvmqError(f"the library was built for target 'host' on a {t['target'].get('mcpu')} CPU; this CPU is "
                            f"{here}: export it again here (--target host)")


def _describe(t: dict) -> str:
    tt = t.get("target", {})
    return f"{t.get('arch')}, mcpu {tt.get('mcpu', '?')}"
