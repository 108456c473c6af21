"""`tvmq bench`: end to end from a tiny tuning log, outputs, JSON fields, bad input, record choice, ratios."""

import csv
import json
import subprocess
import sys

import pytest

from tvmq.cli import main
from tvmq.bench import jobs, ratios
from tvmq.report import bench_report
from tvmq.targets import get_target
from tvmq.machine import Machine, this_machine
from tvmq.task import Task
from tvmq.workload import ConvWorkload

LAYER = {"name": "tiny", "c_in": 8, "h": 12, "w": 12, "c_out": 16, "k": 3, "pad": 1}
FAST = ["--repeat", "2", "--min-repeat-ms", "2"]


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """A workload file of one tiny layer and the records of a real 4-trial xgb tuning run of it."""
    d = tmp_path_factory.mktemp("bench")
    wfile = d / "tiny.json"
    wfile.write_text(json.dumps([LAYER]))
    logs = d / "logs"
    cmd = [sys.executable, "-m", "tvmq", "tune", "--target", "host", "--workload-file", str(wfile), "--variants",
           "float,int8", "--trials", "4", "--batch-size", "4", "--log", str(logs / "host.jsonl"), "--quiet", *FAST]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return d, wfile, logs


@pytest.mark.llvm
def test_bench_end_to_end_from_logs(tuned, capsys):
    d, wfile, logs = tuned
    out, js = d / "out", d / "bench.json"
    rc = main(["bench", "--suite", str(wfile), "--target", "host", "--from-logs", str(logs), "--threads", "1,2",
               "--variants", "float,int8,im2col", "--out", str(out), "--json", str(js), "--perf", "--quiet", *FAST])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    # im2col has no record in the log: default schedule, with a warning
    assert "no tuning record for tiny im2col" in cap.err
    for name in ("report.md", "results.csv", "results.json", "gflops.png", "speedup.png", "tuning_curves.png",
                 "threads.png", "roofline.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    rows = json.loads(js.read_text())
    variants = {r["variant"] for r in rows}
    assert {"float", "int8", "im2col", "ort.conv", "ort.qlinearconv", "numpy.im2col"} <= variants
    assert len(rows) == 2 * len(variants)  # one row per variant and thread count
    for r in rows:
        for k in ("workload", "variant", "target", "best_ms", "gflops", "verified", "threads", "pct_peak"):
            assert k in r, k
        assert r["workload"] == "tiny" and r["target"] == "host"
        assert r["verified"] is True and r["best_ms"] > 0 and r["gflops"] > 0, (r["variant"], r["threads"], r["status"], r["error"])
    by = {(r["variant"], r["threads"]): r for r in rows}
    assert by[("float", 1)]["tuner"] == "xgb" and by[("int8", 2)]["tuner"] == "xgb"
    assert by[("im2col", 1)]["tuner"] == "default"
    assert by[("float", 2)]["vs_float"] == pytest.approx(1.0)
    assert by[("ort.conv", 1)]["vs_ort"] == pytest.approx(1.0)
    assert by[("int8", 1)]["unit"] == "GOPS" and by[("float", 1)]["unit"] == "GFLOPS"
    assert by[("float", 1)]["so_bytes"] > 0 and by[("float", 1)]["compile_s"] > 0
    with open(out / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == len(rows)
    full = json.loads((out / "results.json").read_text())
    assert full["peak"]["fp32"]["1"]["gflops"] > 0 and full["peak"]["bandwidth"]["2"]["gbps"] > 0
    assert {c["variant"] for c in full["tuning_curves"]} == {"float", "int8"}
    report = (out / "report.md").read_text()
    for needle in ("## Measured peak", "## Results", "### 1 thread(s)", "### 2 thread(s)", "## Memory", "cb5",
                   "## Hardware counters", "roofline.png", "int8 peak"):
        assert needle in report, needle
    from tvmq.peers import perf

    ok, why = perf.available()
    assert ("ipc" in report) if ok else (f"Not available: {why}" in report)  # --perf: counters, or why not


@pytest.mark.llvm
def test_bench_missing_log_dir_warns_and_uses_default_schedule(tuned, capsys):
    d, wfile, _ = tuned
    js = d / "nolog.json"
    rc = main(["bench", "--suite", str(wfile), "--from-logs", str(d / "no-such-dir"), "--variants", "float",
               "--peers", "none", "--threads", "2", "--out", str(d / "nolog"), "--json", str(js), "--no-plots",
               "--quiet", *FAST])
    err = capsys.readouterr().err
    assert rc == 0
    assert "does not exist" in err and "no tuning record for tiny float" in err
    (row,) = json.loads(js.read_text())
    assert row["tuner"] == "default" and row["verified"] and row["variant"] == "float"
    assert "does not exist" in (d / "nolog" / "report.md").read_text()


@pytest.mark.llvm
def test_bench_trials_tunes_first_into_out_logs(tuned, capsys):
    d, wfile, _ = tuned
    out = d / "tr"
    rc = main(["bench", "--suite", str(wfile), "--trials", "2", "--variants", "float", "--peers", "none",
               "--threads", "2", "--out", str(out), "--no-plots", "--quiet", *FAST])
    assert rc == 0, capsys.readouterr().err
    recs = [json.loads(x) for x in (out / "logs" / "host.jsonl").read_text().splitlines()]
    assert sum(not r["retime"] for r in recs) == 2 and {r["tuner"] for r in recs} == {"xgb"}  # and the re-times
    (row,) = json.loads((out / "results.json").read_text())["rows"]
    assert row["tuner"] == "xgb" and row["verified"] and row["trial"] in (1, 2)


@pytest.mark.parametrize("argv,needle", [
    (["--suite", "resnet"], "unknown workload suite 'resnet'"),
    (["--suite", "no/such/file.json"], "does not exist"),
    (["--target", "mars"], "unknown target 'mars'"),
    (["--variants", "float,fp8"], "unknown variant(s) ['fp8']"),
    (["--peers", "ort,tensorflow"], "unknown peer(s) ['tensorflow']"),
    (["--threads", "1,two"], "--threads must be comma-separated integers"),
    (["--threads", "0"], "--threads must be positive"),
    (["--trials", "-1"], "--trials must be >= 0"),
    (["--tuner", "annealer"], "unknown --tuner 'annealer'"),
])
def test_bench_bad_input_is_one_line(argv, needle, capsys, tmp_path):
    assert main(["bench", "--out", str(tmp_path / "o"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err


# -- pieces ---------------------------------------------------------------------------------------------
def _rec(task, tuner, ms, trial=1, status="ok", machine=None):
    m = machine or this_machine()
    return {"schema_version": 2, "target": task.target.target, "workload": task.workload.to_dict(),
            "workload_key": task.workload.key, "variant": task.variant, "params": task.params, "config": {"t": ms},
            "times": [ms / 1e3] * 3 if status == "ok" else [], "status": status, "tuner": tuner, "trial": trial,
            "task_key": task.key, "machine": m.to_dict(), "machine_kind": m.kind, "threads": 2}


def test_pick_record_prefers_xgb_then_best_tvmq_tuner():
    wl = ConvWorkload.from_dict(LAYER)
    task = Task.make(wl, "float", get_target("server"))
    recs = [_rec(task, "random", 1.0), _rec(task, "xgb", 2.0), _rec(task, "xgb", 3.0),
            _rec(task, "metaschedule", 0.5)]
    rec, who = jobs.pick_record(task, recs)
    assert who == "xgb" and rec["config"] == {"t": 2.0}
    rec, who = jobs.pick_record(task, [r for r in recs if r["tuner"] != "xgb"])
    assert who == "random" and rec["config"] == {"t": 1.0}  # metaschedule is a peer, not a tvmq tuner
    assert jobs.pick_record(task, [recs[-1]]) == (None, "default")
    rec, who = jobs.pick_record(task, recs, "random")
    assert who == "random" and rec["config"] == {"t": 1.0}
    other = Task.make(wl, "int8", task.target)
    assert jobs.pick_record(other, recs) == (None, "default")
    # Another machine's records never count as this machine's, and the note says where they are.
    elsewhere = Machine(kind="amd-znver9-2c", vendor="amd", arch="x86_64", cores=2)
    notes = []
    assert jobs.pick_record(task, [_rec(task, "xgb", 2.0, machine=elsewhere)], notes=notes) == (None, "default")
    assert "amd-znver9-2c" in notes[0] and "--transfer" in notes[0]


def test_ratios_and_percent_of_peak():
    wl = ConvWorkload.from_dict(LAYER)
    t = get_target("server")
    rows = [jobs._row(wl, "float", "tvmq", t, "local", 2, [0.002], "ok"),
            jobs._row(wl, "int8", "tvmq", t, "local", 2, [0.001], "ok"),
            jobs._row(wl, "im2col", "tvmq", t, "local", 2, [0.004], "ok"),
            jobs._row(wl, "metaschedule.float", "metaschedule", t, "local", 2, [0.003], "ok", base_variant="float"),
            jobs._row(wl, "ort.conv", "onnxruntime", t, "local", 2, [0.001], "ok"),
            jobs._row(wl, "codebook", "tvmq", t, "local", 2, [], "wrong_result", "max abs error 3")]
    peak = {"fp32": {2: {"gflops": wl.flops / 0.001 / 1e9}}}
    ratios.add_ratios(rows, peak)
    f, i8, im, ms, ort, cb = rows
    assert i8["peak_kind"] == "fp32" and i8["pct_peak"] == pytest.approx(100.0)  # no int8 peak: the fp32 one
    ratios.add_ratios(rows, dict(peak, int8={2: {"gops": 4 * peak["fp32"][2]["gflops"]}}))
    assert i8["peak_kind"] == "int8" and i8["pct_peak"] == pytest.approx(25.0) and f["peak_kind"] == "fp32"
    assert i8["vs_float"] == pytest.approx(2.0) and i8["unit"] == "GOPS"
    assert f["vs_im2col"] == pytest.approx(2.0) and f["vs_ort"] == pytest.approx(0.5)
    assert f["vs_metaschedule"] == pytest.approx(1.5) and ms["vs_metaschedule"] is None
    assert f["pct_peak"] == pytest.approx(50.0) and ort["pct_peak"] == pytest.approx(100.0)
    assert cb["verified"] is False and cb["gflops"] is None and cb["vs_float"] is None and cb["pct_peak"] is None
    assert f["spread_pct"] == 0.0


def test_tuning_curves_are_best_so_far():
    wl = ConvWorkload.from_dict(LAYER)
    task = Task.make(wl, "float", get_target("server"))
    recs = [_rec(task, "xgb", 3.0, 1), _rec(task, "xgb", 9.0, 2, "wrong_result"), _rec(task, "xgb", 2.0, 3),
            _rec(task, "xgb", 4.0, 4), _rec(task, "metaschedule", 1.0, 64)]
    curves = bench_report.tuning_curves(recs, task.target, [wl])
    by = {c["tuner"]: c for c in curves}
    assert by["xgb"]["trials"] == [1, 2, 3, 4]
    g = [wl.flops / (ms / 1e3) / 1e9 for ms in (3.0, 3.0, 2.0, 2.0)]
    assert by["xgb"]["best_gflops"] == pytest.approx(g)
    assert by["metaschedule"]["trials"] == [64]
    assert bench_report.tuning_curves(recs, get_target("edge"), [wl]) == []  # other target: not this bench's


def test_memory_table():
    wl = ConvWorkload.from_dict(LAYER)
    (m,) = bench_report.memory_table([wl])
    n = 16 * 8 * 9
    assert m["float"] == 4 * n and m["int8"] == n and m["int4"] == n // 2
    assert m["cb5"] == -(-n * 5 // 8) + 32 * 4 and m["cb8"] == n + 256 * 4
    assert m["im2col_f32_extra"] == 8 * 9 * 144 * 4 and m["im2col_i8_extra"] == 8 * 9 * 144
