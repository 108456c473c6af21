"""The emulated Raspberry Pi 3: a TVM RPC tracker on this machine and N RPC
servers running aarch64 Python + TVM under ``qemu-aarch64-static -cpu cortex-a53``.

Everything binds to 127.0.0.1 only (an RPC server runs whatever code it is
sent).  ``up`` records every process it starts (pid, start time, port, log) in
``.edge/board.json``; ``down`` stops exactly those processes (their process
groups and children) and nothing else.  Logs go to ``.edge/logs/``.

What ``up`` needs is installed once by ``scripts/setup_edge.sh`` (called
automatically when its stamp is missing).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ..errors import TvmqError
from ..run import tracker as _tracker
from ..run.settings import RPCSettings

REPO = Path(__file__).resolve().parents[2]
EDGE_DIR = REPO / ".edge"  # fixed: no settings from the environment at import time
SETUP_SCRIPT = REPO / "scripts" / "setup_edge.sh"
WRAPPER = EDGE_DIR / "bin" / "python-aarch64"
STATE_FILE = EDGE_DIR / "board.json"
SERVE_SCRIPT = Path(__file__).resolve().parent / "serve_rpc.py"  # TVM's listen loop, one import
LOG_DIR = EDGE_DIR / "logs"

HOST = "127.0.0.1"
DEFAULT_PORT = 9190
DEFAULT_KEY = "rasp3b"
SERVER_PORT_BASE = 9091
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1", "ip6-localhost"}

# Hold the Popen objects of the processes this Python process started, so that
# they are reaped (no zombies) when they exit while we still run.
_CHILDREN: dict[int, subprocess.Popen] = {}


def _say(msg: str):
    print(f"tvmq edge: {msg}", file=sys.stderr, flush=True)


# -- installation ------------------------------------------------------------------
def installed() -> bool:
    return (EDGE_DIR / "setup.stamp").is_file() and WRAPPER.is_file()


def ensure_installed(quiet: bool = False):
    """Run scripts/setup_edge.sh (a no-op taking milliseconds once installed)."""
    if not SETUP_SCRIPT.is_file():
        raise TvmqError(f"{SETUP_SCRIPT} is missing; the emulated board needs a checkout of the tvmq repository")
    env = dict(os.environ, TVMQ_EDGE_DIR=str(EDGE_DIR))
    first = not installed()
    if first and not quiet:
        _say(f"installing the emulated board into {EDGE_DIR} (once; about a minute)")
    p = subprocess.run(["bash", str(SETUP_SCRIPT)], env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        tail = "\n".join(p.stdout.strip().splitlines()[-6:])
        raise TvmqError(f"scripts/setup_edge.sh failed (exit {p.returncode}):\n{tail}")
    if first and not quiet:
        _say(p.stdout.strip().splitlines()[-1] if p.stdout.strip() else "installed")


# -- process records -------------------------------------------------------------------
def _create_time(pid: int) -> float | None:
    import psutil  # lazy: only the board's process management needs it

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _alive(rec: dict) -> bool:
    """Is the recorded process still the one we started (not a reused pid)?"""
    import psutil  # lazy: only the board's process management needs it

    if rec.get("pid") in _CHILDREN:
        _CHILDREN[rec["pid"]].poll()
    try:
        p = psutil.Process(rec["pid"])
        if p.status() == psutil.STATUS_ZOMBIE:
            return False
        return abs(p.create_time() - rec["create_time"]) < 0.5
    except (psutil.NoSuchProcess, psutil.AccessDenied, KeyError):
        return False


def _read_state() -> dict | None:
    try:
        return json.loads(STATE_FILE.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _write_state(state: dict):
    EDGE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = STATE_FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(STATE_FILE)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
            return True
        except OSError:
            return False


def _spawn(cmd: list[str], log: Path, env: dict | None = None) -> dict:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as f:
        f.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
        f.flush()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                             env=env, cwd=str(EDGE_DIR), start_new_session=True)
    _CHILDREN[p.pid] = p
    ct = _create_time(p.pid)
    return {"pid": p.pid, "create_time": ct if ct is not None else time.time(), "cmd": cmd, "log": str(log)}


def _stop(rec: dict, grace_s: float = 5.0):
    """SIGTERM the recorded process's group and children, then SIGKILL what is left."""
    import psutil  # lazy: only the board's process management needs it

    if not _alive(rec):
        return
    try:
        procs = [psutil.Process(rec["pid"])]
        procs += procs[0].children(recursive=True)
    except psutil.NoSuchProcess:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(rec["pid"], sig)  # its own group (start_new_session)
        except (ProcessLookupError, PermissionError):
            pass
        for p in procs:
            try:
                p.send_signal(sig)
            except psutil.NoSuchProcess:
                pass
        if rec["pid"] in _CHILDREN:
            try:
                _CHILDREN[rec["pid"]].wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
        _, still = psutil.wait_procs(procs, timeout=grace_s)
        if not still:
            break
    _CHILDREN.pop(rec["pid"], None)


def _log_tail(path: str, n: int = 8) -> str:
    try:
        lines = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join("    " + ln for ln in lines[-n:])


# -- the board ----------------------------------------------------------------------------
def up(n_servers: int = 1, port: int = DEFAULT_PORT, key: str = DEFAULT_KEY, *, wait_s: float = 180.0,
       threads: int | None = None, quiet: bool = False) -> dict:
    """Start (or repair) the emulated board: a tracker on 127.0.0.1:``port`` and
    ``n_servers`` emulated Cortex-A53 servers registered under ``key``.

    Idempotent: live processes are kept, dead ones restarted.  Returns ``status()``
    once the tracker lists all servers; raises TvmqError (with the logs' tails)
    after ``wait_s`` seconds.  ``threads`` sets TVM_NUM_THREADS on the servers.
    """
    if n_servers < 1:
        raise TvmqError(f"--servers must be >= 1, got {n_servers}")
    ensure_installed(quiet=quiet)
    state = _read_state()
    if state and _alive(state["tracker"]) and (state["port"] != port or state["key"] != key):
        raise TvmqError(f"the emulated board is already up at {HOST}:{state['port']} with key {state['key']!r}; "
                        f"run 'python -m tvmq edge down' first")
    if not state or not _alive(state["tracker"]) or state["port"] != port:
        if state:  # stale: stop whatever of it still runs
            for rec in state.get("servers", []):
                _stop(rec)
        if not _port_free(port):
            raise TvmqError(f"port {port} on {HOST} is in use (another tracker?); choose another with --port")
        state = {"host": HOST, "port": port, "key": key, "started": time.time(), "servers": [],
                 "tracker": None, "emulated": "qemu-aarch64-static -cpu cortex-a53"}
        cmd = [sys.executable, "-m", "tvm.exec.rpc_tracker", "--host", HOST, "--port", str(port),
               "--port-end", str(port + 1)]
        state["tracker"] = _spawn(cmd, LOG_DIR / "tracker.log")
        _write_state(state)
        deadline = time.monotonic() + 30
        while True:
            try:
                _tracker.summary(HOST, port, timeout=2)
                break
            except _tracker.TrackerError as e:
                if not _alive(state["tracker"]) or time.monotonic() > deadline:
                    _stop(state["tracker"])
                    raise TvmqError(f"the RPC tracker did not start on {HOST}:{port}: {e}\n"
                                    f"{_log_tail(state['tracker']['log'])}") from None
                time.sleep(0.2)
    # servers: keep live ones, (re)start the missing ones
    live = [s for s in state["servers"] if _alive(s)]
    used = {s["port"] for s in live} | {port}
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    if threads:
        env["TVM_NUM_THREADS"] = str(threads)
    next_port = SERVER_PORT_BASE
    started = []
    for i in range(len(live), n_servers):
        while next_port in used or not _port_free(next_port):
            next_port += 1
            if next_port > SERVER_PORT_BASE + 1000:
                raise TvmqError(f"no free port for an RPC server on {HOST} from {SERVER_PORT_BASE}")
        sport = next_port
        used.add(sport)
        cmd = [str(WRAPPER), str(SERVE_SCRIPT), "--tracker", f"{HOST}:{port}", "--key", key,
               "--host", HOST, "--port", str(sport)]
        rec = _spawn(cmd, LOG_DIR / f"server-{sport}.log", env=env)
        rec["port"] = sport
        live.append(rec)
        started.append(rec)
        state["servers"] = live
        _write_state(state)
    if started and not quiet:
        _say(f"started {len(started)} emulated Cortex-A53 server(s) (qemu) on {HOST}, "
             f"ports {[s['port'] for s in started]}; waiting for them to register (about 10 s each)")
    try:
        wait_for_servers(n_servers, wait_s=wait_s)
    except TvmqError as e:
        logs = "\n".join(f"  {Path(s['log']).name}:\n{_log_tail(s['log'])}" for s in started if s.get("log"))
        raise TvmqError(f"{e}\n{logs}\n(see {LOG_DIR}; 'python -m tvmq edge down' stops what was started)") from None
    return status()


def wait_for_servers(n: int = 1, wait_s: float = 180.0) -> int:
    """Wait until the board's tracker lists ``n`` servers; fails early if they died."""
    state = _read_state()
    if not state or not _alive(state["tracker"]):
        raise TvmqError("the emulated board is not up ('python -m tvmq edge up')")
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return _tracker.wait_for_key(HOST, state["port"], state["key"], wait_s=min(2.0, wait_s), n=n)
        except _tracker.TrackerError as e:
            dead = [s for s in state["servers"] if not _alive(s)]
            if len([s for s in state["servers"] if _alive(s)]) < n and dead:
                raise TvmqError(f"emulated RPC server(s) on port(s) {[s['port'] for s in dead]} exited "
                                f"before registering at {HOST}:{state['port']}") from None
            if time.monotonic() > deadline:
                raise TvmqError(f"{e} (waited {wait_s:g} s)") from None


def down(quiet: bool = False) -> int:
    """Stop exactly the processes ``up`` recorded; returns how many were running."""
    state = _read_state()
    if not state:
        return 0
    n = 0
    for rec in state.get("servers", []) + [state.get("tracker")]:
        if rec and _alive(rec):
            n += 1
            _stop(rec)
    STATE_FILE.unlink(missing_ok=True)
    if not quiet:
        _say(f"stopped {n} process(es)" if n else "nothing was running")
    return n


def status() -> dict:
    """What runs: tracker address, key, each server (pid, port, alive), and what the
    tracker reports (registered servers, free ones)."""
    state = _read_state()
    out = {"up": False, "installed": installed(), "edge_dir": str(EDGE_DIR), "logs": str(LOG_DIR),
           "emulated": True}
    if not state:
        return out
    tr_alive = _alive(state["tracker"])
    out.update(tracker=f"{state['host']}:{state['port']}", host=state["host"], port=state["port"],
               key=state["key"], tracker_pid=state["tracker"]["pid"], tracker_alive=tr_alive,
               servers=[{"pid": s["pid"], "port": s["port"], "alive": _alive(s), "log": s["log"]}
                        for s in state.get("servers", [])])
    out["registered"] = out["free"] = 0
    if tr_alive:
        try:
            summ = _tracker.summary(state["host"], state["port"], timeout=5)
            out["registered"] = _tracker.servers(summ, state["key"])
            out["free"] = summ.get("queue_info", {}).get(state["key"], {}).get("free", 0)
        except _tracker.TrackerError as e:
            out["error"] = str(e)
    out["up"] = tr_alive and out["registered"] > 0
    return out


def kill_server(index: int = 0, sig: int = signal.SIGKILL) -> int:
    """Kill one emulated server abruptly (for tests of a board that dies); returns its pid."""
    state = _read_state()
    if not state or index >= len(state.get("servers", [])):
        raise TvmqError(f"no emulated server #{index} is recorded")
    rec = state["servers"][index]
    if _alive(rec):
        os.killpg(rec["pid"], sig)
        if rec["pid"] in _CHILDREN:
            _CHILDREN[rec["pid"]].wait(timeout=10)
    return rec["pid"]


def ensure_up(n_servers: int = 1, port: int = DEFAULT_PORT, key: str = DEFAULT_KEY, **kw):
    """For ``tune --target edge`` without ``--rpc-tracker``: use the emulated board,
    starting it if needed (and saying so on stderr).  Returns the RPCSettings to use."""

    st = status()
    if st["up"] and st["port"] == port and st["key"] == key and st["registered"] >= 1:
        _say(f"no --rpc-tracker given: using the emulated board at {st['tracker']} (key {key!r}); "
             f"times are labelled emulated")
    else:
        _say(f"no --rpc-tracker given: starting the emulated board (qemu Cortex-A53) at {HOST}:{port}, "
             f"key {key!r}; times are labelled emulated")
        up(n_servers=n_servers, port=port, key=key, **kw)
    return RPCSettings(tracker_host=HOST, tracker_port=port, key=key)


def is_emulated(rpc) -> bool:
    """Does ``rpc`` (an RPCSettings, or "HOST:PORT") point at this project's emulated board?"""
    if isinstance(rpc, str):
        host, _, port = rpc.rpartition(":")
        port = int(port) if port.isdigit() else -1
    else:
        host, port = rpc.tracker_host, rpc.tracker_port
    state = _read_state()
    return bool(state) and host in LOOPBACK_NAMES and port == state["port"] and _alive(state["tracker"])
