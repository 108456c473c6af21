"""The edge tier: an emulated Raspberry Pi 3 (qemu Cortex-A53) behind a TVM RPC
tracker on 127.0.0.1, cross-compiled kernels measured and verified on it, and a
server that dies mid-run.  Needs ``bash scripts/setup_edge.sh`` (root, once);
skipped when that cannot run.  About 1-2 minutes.

The board used here has its own state file and tracker port, so a board the
user brought up with ``tvmq edge up`` is left alone.
"""

from __future__ import annotations

import json
import socket
import sys
import subprocess
import threading
import time

import numpy as np
import pytest

from tvmq.errors import TvmqError
from tvmq.run.base import BuildResult, Verifier
from tvmq.run.settings import MeasureSettings, RPCSettings
from tvmq.workload import ConvWorkload

pytestmark = pytest.mark.rpc

WL = ConvWorkload("edge_small", 1, 8, 8, 8, 16, 3, 3, pad=(1, 1, 1, 1))
CROSS_CC = "aarch64-linux-gnu-g++"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- kernels ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def op():
    from tvmq.ops import make_op

    return make_op("float", WL, layout="nchw")


def _vectorized(op):
    """The conv with the output row innermost and vectorized (4 x f32 = one NEON register)."""
    from tvm import s_tir

    sch = s_tir.Schedule(op.irmodule())
    b = sch.get_sblock("conv")
    n, o, y, x, c, r, s = sch.get_loops(b)
    sch.reorder(n, o, y, c, r, s, x)
    sch.compute_inline(sch.get_sblock("pad"))
    _, xi = sch.split(x, [None, 4])
    sch.vectorize(xi)
    sch.decompose_reduction(b, c)
    return sch.mod


@pytest.fixture(scope="module")
def edge_target():
    from tvmq.targets import get_target

    return get_target("edge")


@pytest.fixture(scope="module")
def libs(op, edge_target, tmp_path_factory):
    """Two cross-linked aarch64 .so files: the plain conv and a vectorized one."""
    import tvm

    from tvmq.build.cross import export_lib

    d = tmp_path_factory.mktemp("edge_libs")
    out = {}
    for name, mod in (("plain", op.irmodule()), ("vec", _vectorized(op))):
        ex = tvm.compile(mod, target=edge_target.tvm_target())
        out[name] = export_lib(ex, str(d / f"{name}.so"), cross_cc=edge_target.cross_cc)
    return out


class OpVerifier(Verifier):
    """Inputs from the OpSpec, checked against its numpy reference; ``hook(config)``
    runs when a candidate's inputs are made (the tests kill the server there)."""

    def __init__(self, op, hook=None, wrong=False):
        self.op = op
        self.inp = op.make_inputs(np.random.default_rng(0))
        self.hook = hook
        self.wrong = wrong

    def inputs(self, config):
        if self.hook:
            self.hook(config)
        return self.inp

    def output_spec(self, config):
        return (self.op.out_arg.shape, self.op.out_arg.dtype)

    def check(self, config, out):
        if self.wrong:
            out = out + 1.0
        return self.op.check(out, self.inp)


# -- the board ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def board(tmp_path_factory):
    """One emulated server behind a tracker on a free port, with a private state file."""
    from conftest import require_board_installed
    from tvmq.edge import board as B

    require_board_installed()
    d = tmp_path_factory.mktemp("edge_state")
    mp = pytest.MonkeyPatch()
    mp.setattr(B, "STATE_FILE", d / "board.json")
    mp.setattr(B, "LOG_DIR", d / "logs")
    port = _free_port()
    t0 = time.monotonic()
    B.up(n_servers=1, port=port, quiet=True)
    B.startup_s = time.monotonic() - t0
    yield B
    B.down(quiet=True)
    mp.undo()


@pytest.fixture
def rpc(board):
    st = board.status()
    return RPCSettings(tracker_host="127.0.0.1", tracker_port=st["port"], key=st["key"], connect_timeout_s=5)


FAST = MeasureSettings(repeat=3, min_repeat_ms=5)


def test_tune_over_rpc_end_to_end(rpc, tmp_path):
    """`tvmq tune --target edge` through the tracker: verified on the board, with the key-instruction
    counts of each best kernel reported.  (Which instructions appear depends on which of 4 sampled
    configs won, so the NEON checks are on fixed configs below.  This board's state file is private to
    the test process, so the subprocess sees an ordinary tracker: the emulated label is tested above.)"""
    wl = tmp_path / "w.json"
    wl.write_text(json.dumps([{"name": "tiny", "c_in": 8, "h": 6, "w": 6, "c_out": 16, "k": 3, "pad": 1}]))
    log, out = tmp_path / "edge.jsonl", tmp_path / "edge.json"
    cmd = [sys.executable, "-m", "tvmq", "tune", "--target", "edge", "--rpc-tracker", rpc.address, "--workload-file",
           str(wl), "--variants", "float,int8", "--trials", "4", "--batch-size", "4", "--log", str(log), "--json",
           str(out), "--repeat", "2", "--min-repeat-ms", "1", "--quiet", "--retime", "0"]  # emulated runs are slow
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    rows = {r["variant"]: r for r in json.loads(out.read_text())}
    assert all(r["verified"] and r["runner"] == "rpc" for r in rows.values())
    from tvmq.build.from_log import best_record
    from tvmq.report.asm import key_instructions
    from tvmq.targets import get_target
    from tvmq.task import Task

    recs = [json.loads(line) for line in log.read_text().splitlines()]
    for v, r in rows.items():  # the reported counts are those of the logged best kernel
        task = Task.make(ConvWorkload.from_dict(recs[0]["workload"]), v, get_target("edge"))
        best = best_record(task, recs)
        assert r["asm_counts"] == key_instructions(task, task.space().complete(best["config"])), v
    assert len(recs) == 8 and all(r["runner"] == "rpc" and r["target_name"] == "edge" for r in recs)


# -- tests ----------------------------------------------------------------------------------------
def test_vectorized_kernel_has_neon_fma(op, edge_target):
    import tvm

    from tvmq.build.cross import asm, count_instructions

    ex = tvm.compile(_vectorized(op), target=edge_target.tvm_target())
    text = asm(ex)
    assert "fmla" in text and ".4s" in text
    counts = count_instructions(text, "aarch64")
    assert counts["fma_f32x4"] > 0, counts


def test_default_schedules_use_neon_on_edge():
    """The default configs (what the tuner measures first) compile to NEON FMAs for float and to
    widening multiply-adds for int8 on the Cortex-A53 target."""
    from tvmq.report.asm import key_instructions
    from tvmq.targets import get_target
    from tvmq.task import Task

    edge = get_target("edge")
    fl = Task.make(WL, "float", edge)
    assert key_instructions(fl, fl.space().default)["fma_f32x4"] > 0
    i8 = Task.make(WL, "int8", edge)
    c = key_instructions(i8, i8.space().default)
    assert c["smlal"] + c["umlal"] + c["smull"] > 0, c


def test_export_is_an_aarch64_shared_library(libs):
    out = subprocess.run(["file", libs["vec"]], capture_output=True, text=True).stdout
    if out:  # `file` may be absent
        assert "aarch64" in out and "shared object" in out


def test_unreachable_tracker_fails_fast_naming_address_and_key(op, libs):
    from tvmq.run.rpc import RPCRunner

    port = _free_port()  # nothing listens there
    runner = RPCRunner(RPCSettings(tracker_port=port, key="rasp3b", connect_timeout_s=5), emulated=False)
    t0 = time.monotonic()
    with pytest.raises(TvmqError) as ei:
        runner.run([BuildResult({}, "ok", libs["plain"])], OpVerifier(op), FAST)
    assert time.monotonic() - t0 < 5
    assert f"127.0.0.1:{port}" in str(ei.value) and "rasp3b" in str(ei.value)


def test_unknown_key_fails_within_connect_timeout(op, libs, rpc):
    from tvmq.run.rpc import RPCRunner

    bad = RPCSettings(tracker_port=rpc.tracker_port, key="no-such-board", connect_timeout_s=2)
    t0 = time.monotonic()
    with pytest.raises(TvmqError) as ei:
        RPCRunner(bad).run([BuildResult({}, "ok", libs["plain"])], OpVerifier(op), FAST)
    assert time.monotonic() - t0 < 6
    assert "no-such-board" in str(ei.value) and f"127.0.0.1:{rpc.tracker_port}" in str(ei.value)


def test_board_status_and_emulated_label(board, rpc):
    from tvmq.cli import main
    from tvmq.edge import is_emulated
    from tvmq.run.rpc import RPCRunner

    st = board.status()
    assert st["up"] and st["registered"] == 1 and all(s["alive"] for s in st["servers"])
    assert is_emulated(rpc) and not is_emulated(RPCSettings(tracker_port=rpc.tracker_port + 1))
    assert RPCRunner(rpc).label == "rpc-emulated"
    assert RPCRunner(rpc, emulated=False).label == "rpc"
    assert main(["edge", "status"]) == 0


def test_verified_and_timed_on_the_emulated_board(op, libs, rpc):
    from tvmq.run.rpc import RPCRunner

    runner = RPCRunner(rpc)
    builds = [BuildResult({"k": "plain"}, "ok", libs["plain"], compile_s=0.1),
              BuildResult({"k": "vec"}, "ok", libs["vec"]),
              BuildResult({"k": "bad"}, "build_error", error="boom")]
    res = runner.run(builds, OpVerifier(op), FAST)
    assert [r.status for r in res] == ["ok", "ok", "build_error"], [(r.status, r.error) for r in res]
    for r in res[:2]:
        assert len(r.times) == FAST.repeat and all(t > 0 for t in r.times)
        assert r.max_abs_err is not None and r.max_abs_err < 1e-3
    assert res[0].compile_s == 0.1 and res[2].error == "boom" and not res[2].times


def test_wrong_result_records_no_time(op, libs, rpc):
    from tvmq.run.rpc import RPCRunner

    res = RPCRunner(rpc).run([BuildResult({}, "ok", libs["plain"])], OpVerifier(op, wrong=True), FAST)
    assert res[0].status == "wrong_result" and not res[0].times


def test_slow_candidate_is_a_timeout(op, libs, rpc):
    from tvmq.run.rpc import RPCRunner

    slow = MeasureSettings(repeat=5, min_repeat_ms=4000, timeout_s=1)
    t0 = time.monotonic()
    res = RPCRunner(rpc, upload_slack_s=1).run([BuildResult({}, "ok", libs["plain"])], OpVerifier(op), slow)
    assert res[0].status == "timeout" and not res[0].times, (res[0].status, res[0].error)
    assert time.monotonic() - t0 < 15


def test_server_killed_mid_run_then_back(board, op, libs, rpc):
    """The server dies while candidate 1 runs; it is restarted meanwhile: the runner waits for the
    board, runs candidate 1 again (the board failed, not the kernel) and measures them all."""
    from tvmq.run.rpc import RPCRunner

    restarter = []

    def hook(config):
        if config.get("kill") and not restarter:
            board.kill_server(0)
            t = threading.Thread(target=board.up, kwargs=dict(n_servers=1, port=rpc.tracker_port, quiet=True))
            t.start()
            restarter.append(t)

    builds = [BuildResult({"i": i, "kill": i == 1}, "ok", libs["plain"]) for i in range(4)]
    res = RPCRunner(rpc, wait_s=120).run(builds, OpVerifier(op, hook=hook), FAST)
    restarter[0].join(timeout=120)
    assert [r.status for r in res] == ["ok", "ok", "ok", "ok"], [(r.status, r.error) for r in res]
    assert len(restarter) == 1 and all(r.board and r.board.startswith("127.0.0.1:") for r in res)


def test_two_boards_one_killed_its_candidates_run_on_the_other(board, op, libs):
    """Two servers behind a private tracker; one is killed under a candidate: that candidate runs
    again on the survivor, every result names the board that measured it, nothing is lost."""
    from tvmq.run.rpc import RPCRunner

    port = _free_port()
    mp = pytest.MonkeyPatch()
    mp.setattr(board, "STATE_FILE", board.STATE_FILE.with_name("two.json"))
    board.up(n_servers=2, port=port, quiet=True)
    try:
        killed = []

        def hook(config):
            if config.get("kill") and not killed:
                killed.append(1)
                board.kill_server(0)

        rpc2 = RPCSettings(tracker_host="127.0.0.1", tracker_port=port, key=board.status()["key"], connect_timeout_s=5)
        builds = [BuildResult({"i": i, "kill": i == 2}, "ok", libs["plain"]) for i in range(6)]
        # 90 s: on a loaded 2-core CI machine a qemu server has been silent for over 30 s
        res = RPCRunner(rpc2, wait_s=90).run(builds, OpVerifier(op, hook=hook), FAST)
        logs = {s["port"]: board._log_tail(s["log"], 20) for s in board.status().get("servers", [])}
        assert [r.status for r in res] == ["ok"] * 6, ([(r.status, r.error) for r in res], logs)
        assert killed and len({r.board for r in res}) >= 1 and all(r.board for r in res)
    finally:
        board.down(quiet=True)
        mp.undo()


def test_server_killed_and_not_back_loses_nothing(board, op, libs, rpc):
    """The server dies and stays dead: the finished result is kept, the rest are
    run_error with a board reason, the next run fails clearly, and after a
    restart the same candidates measure fine."""
    from tvmq.run.rpc import RPCRunner, is_board_error

    def hook(config):
        if config.get("kill"):
            board.kill_server(0)

    builds = [BuildResult({"i": i, "kill": i == 1}, "ok", libs["plain"]) for i in range(4)]
    runner = RPCRunner(rpc, wait_s=3)
    t0 = time.monotonic()
    res = runner.run(builds, OpVerifier(op, hook=hook), FAST)
    assert time.monotonic() - t0 < 30
    assert [r.status for r in res] == ["ok", "run_error", "run_error", "run_error"]
    assert res[0].times and all(not r.times for r in res[1:])
    assert all(is_board_error(r) for r in res[1:]) and runner.lost
    assert "rasp3b" in res[2].error
    with pytest.raises(TvmqError, match="rasp3b"):
        runner.run(builds[:1], OpVerifier(op), FAST)
    board.up(n_servers=1, port=rpc.tracker_port, quiet=True)
    res = runner.run(builds, OpVerifier(op), FAST)
    assert [r.status for r in res] == ["ok"] * 4 and runner.lost is None


def test_zz_down_stops_exactly_the_board(board):
    import psutil

    bystander = subprocess.Popen(["sleep", "60"])
    try:
        st = board.status()
        pids = [st["tracker_pid"]] + [s["pid"] for s in st["servers"]]
        assert board.down(quiet=True) == len(pids)
        time.sleep(0.2)
        for pid in pids:
            assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        assert bystander.poll() is None
        assert not board.status()["up"]
    finally:
        bystander.kill()
        bystander.wait()

