"""A whole model tuned in one command: its kernels share one budget, and the export then uses the records."""

import json
from pathlib import Path

import pytest

from tvmq.cli import main

DATA = Path(__file__).resolve().parents[1] / "tvmq" / "data"


@pytest.mark.llvm
def test_tune_model_then_export_uses_its_records(tmp_path, capsys):
    log, js = tmp_path / "logs" / "host.jsonl", tmp_path / "tune.json"
    assert main(["tune", "--model", str(DATA / "digits_cnn.onnx"), "--quantize", "kmeans", "--bits", "4",
                 "--trials", "8", "--batch-size", "2", "--log", str(log), "--json", str(js), "--repeat", "2",
                 "--min-repeat-ms", "5"]) == 0
    err = capsys.readouterr().err
    summary = json.loads(js.read_text())
    assert summary["trials"] == 8 and sum(t["trials"] for t in summary["tasks"]) == 8
    assert all(t["trials"] >= 2 for t in summary["tasks"])  # every kernel got its first batch
    assert "[model]" in err and "model estimate" in err
    recs = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(recs) == 8 and {r["variant"] for r in recs} == {"codebook4"}
    assert all(r["settings"]["flush_cache"] for r in recs)  # timed with cold weights, as in the network
    out = tmp_path / "export"
    assert main(["export", "--model", str(DATA / "digits_cnn.onnx"), "--quantize", "kmeans", "--bits", "4",
                 "--logs", str(log.parent), "--out", str(out)]) == 0
    man = json.loads((out / "manifest.json").read_text())
    assert man["functions"] and all(f["schedule"] == "tuned" for f in man["functions"])


def test_budget_and_bad_model_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    assert main(["tune", "--model", str(bad), "--trials", "4"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.onnx" in err


@pytest.mark.llvm
@pytest.mark.parametrize("quantize,grouped", [("none", "grouped_float"), ("int8", "grouped_int8")])
def test_model_tasks_include_the_depthwise_layers_as_grouped_tasks(tmp_path, quantize, grouped):
    """tune --model extracts the grouped kernels too (MobileNet-v2's depthwise layers), once per layer."""
    import importlib.util

    from tvmq.export.model import ModelOptions, model_tasks
    from tvmq.targets import get_target

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("make_mobilenet_v2", root / "scripts" / "make_mobilenet_v2.py")
    mb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mb)
    path = tmp_path / "tiny.onnx"
    import onnx

    onnx.save(mb.tiny(), str(path))
    tasks = model_tasks(path, get_target("host"), ModelOptions(quantize=quantize))
    g = [(t, n) for t, n in tasks if t.workload.groups > 1]
    assert g and all(t.variant == grouped and n == 1 for t, n in g)
    assert any(t.workload.groups == 1 for t, _ in tasks)
