import json

from tvmq.record import log as recordlog
from tvmq.run.base import RunResult
from tvmq.run.settings import MeasureSettings
from tvmq.targets import get_target
from tvmq.task import Task
from tvmq.workload import resolve

TASK = Task.make(resolve("alexnet.conv3")[0], "codebook", get_target("server"))


def rec(cfg, status="ok", t=1e-3):
    r = RunResult(status, [t, t * 1.1] if status == "ok" else [], "" if status == "ok" else "boom", 0.0)
    return recordlog.make_record(TASK, cfg, r, "local", MeasureSettings(), "xgb", 1)


def test_record_carries_what_the_schema_promises():
    r = rec({"a": 1})
    for k in ("schema_version", "tvmq_version", "tvm_version", "target", "workload", "variant", "config", "times",
              "status", "error", "task_key"):
        assert k in r
    assert r["target"]["mcpu"] == "skylake-avx512" and r["params"] == {"bits": 5}


def test_round_trip_and_best(tmp_path):
    p = tmp_path / "x.jsonl"
    recordlog.append(p, rec({"a": 1}, t=2e-3))
    recordlog.append(p, rec({"a": 2}, t=1e-3))
    recordlog.append(p, rec({"a": 3}, status="wrong_result"))
    rs = recordlog.read(p)
    assert len(rs) == 3 and rs[2]["times"] == []
    b = recordlog.best(rs, TASK.target.target, TASK.workload.key, "codebook")
    assert b["config"] == {"a": 2}
    assert recordlog.best(rs, get_target("host").target, TASK.workload.key, "codebook") is None


def test_malformed_lines_are_skipped_with_a_warning(tmp_path, capsys):
    p = tmp_path / "x.jsonl"
    recordlog.append(p, rec({"a": 1}))
    with open(p, "a") as f:
        f.write('{"schema_version": 1, "target": {"kind": "llvm"}, "workl\n')  # truncated by a crash
        f.write(json.dumps({"schema_version": 99}) + "\n")
    recordlog.append(p, rec({"a": 2}))
    rs = recordlog.read(p)
    assert [r["config"] for r in rs] == [{"a": 1}, {"a": 2}]
    err = capsys.readouterr().err
    assert f"{p}:2" in err and f"{p}:3" in err


def test_task_key_changes_with_anything_that_changes_a_result():
    keys = {TASK.key,
            Task.make(TASK.workload, "codebook", get_target("host")).key,
            Task.make(TASK.workload, "codebook", get_target("server"), bits=4).key,
            Task.make(resolve("alexnet.conv4")[0], "codebook", get_target("server")).key,
            Task.make(TASK.workload, "float", get_target("server")).key}
    assert len(keys) == 5


def test_by_config_rates_a_config_measured_again_by_its_median_record():
    a, b = dict(TASK.space().default, ob=16), dict(TASK.space().default, ob=32)
    recs = [rec(a, t=0.5e-3), rec(a, t=2e-3), rec(a, t=1.9e-3), rec(b, t=1e-3)]
    got = {json.dumps(r["config"], sort_keys=True): r["times"][0] for r in recordlog.by_config(recs)}
    assert got == {json.dumps(a, sort_keys=True): 1.9e-3, json.dumps(b, sort_keys=True): 1e-3}  # not a's lucky 0.5
