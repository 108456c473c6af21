"""tvmq export / tvmq run: layer libraries, checks on load, the shipped model end to end."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tvmq.cli import main

REPO = Path(__file__).resolve().parents[1]
DIGITS = REPO / "tvmq" / "data" / "digits_cnn.onnx"
DIGITS_DATA = REPO / "tvmq" / "data" / "digits_test.npz"
TINY = [{"name": "tiny", "c_in": 16, "h": 8, "w": 8, "c_out": 16, "k": 3, "pad": 1}]

# Runs `tvmq run` in a fresh interpreter where compiling is impossible: the library must load as built.
NO_COMPILER = (
    "import sys, tvm\n"
    "def _no(*a, **k): raise SystemExit('tvmq run tried to compile')\n"
    "tvm.compile = _no\n"
    "from tvmq.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def run_new_process(*argv, timeout=120):
    env = dict(os.environ, TVM_NUM_THREADS="2")
    return subprocess.run([sys.executable, "-c", NO_COMPILER, *argv], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=env)


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    """A host layer library of a tiny layer (float, codebook, int8), built with no tuning logs."""
    d = tmp_path_factory.mktemp("export")
    wf = d / "tiny.json"
    wf.write_text(json.dumps(TINY))
    out = d / "lib"
    rc = main(["export", "--target", "host", "--workload-file", str(wf), "--variants", "float,codebook,int8",
               "--logs", str(d / "no-logs"), "--out", str(out)])
    assert rc == 0
    return out


def copy_of(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    return dst


@pytest.mark.llvm
def test_layer_library_runs_in_a_new_process_without_compiler(tiny_export):
    man = json.loads((tiny_export / "manifest.json").read_text())
    assert [f["name"] for f in man["functions"]] == ["tiny__float", "tiny__codebook", "tiny__int8"]
    assert man["versions"]["tvm"] and man["target"]["name"] == "host"
    f = man["functions"][1]
    assert f["variant"] == "codebook" and f["args"][1]["name"] == "indices" and f["args"][1]["dtype"] == "uint8"
    assert f["schedule"] == "default" and f["record"] is None
    p = run_new_process("run", str(tiny_export), "--repeat", "2")
    assert p.returncode == 0, p.stderr
    assert "all 3 function(s) match numpy" in p.stderr
    assert p.stdout.count(" ok ") == 3 and "GFLOPS" in p.stdout


@pytest.mark.llvm
def test_missing_log_warns_and_uses_default_schedule_then_record_is_used(tmp_path, capsys):
    from tvmq.space import Space
    from tvmq.targets import get_target
    from tvmq.workload import ConvWorkload

    wf = tmp_path / "tiny.json"
    wf.write_text(json.dumps(TINY))
    logs = tmp_path / "logs"
    logs.mkdir()
    assert main(["export", "--workload-file", str(wf), "--variants", "float", "--logs", str(logs),
                 "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert "warning: no tuning record for tiny float on target host" in err and "default schedule" in err
    # a record for this layer: its config is what gets built, and the manifest carries it
    wl = ConvWorkload.from_dict(TINY[0])
    cfg = dict(Space.load(wl, "float").default, tile_ow=4, unroll="none")
    rec = {"schema_version": 1, "target": get_target("host").target, "workload": wl.to_dict(),
           "workload_key": wl.key, "variant": "float", "params": {}, "config": cfg, "times": [1e-4, 1.2e-4],
           "status": "ok", "tuner": "xgb", "trial": 3}
    (logs / "host.jsonl").write_text(json.dumps(rec) + "\n")
    assert main(["export", "--workload-file", str(wf), "--variants", "float", "--logs", str(logs),
                 "--out", str(tmp_path / "b")]) == 0
    assert "no tuning record" not in capsys.readouterr().err
    f = json.loads((tmp_path / "b" / "manifest.json").read_text())["functions"][0]
    assert f["schedule"] == "tuned" and f["config"] == cfg and f["record"]["trial"] == 3
    assert main(["run", str(tmp_path / "b")]) == 0


@pytest.mark.llvm
def test_tampered_library_is_refused(tiny_export, tmp_path, capsys):
    d = copy_of(tiny_export, tmp_path)
    lib = d / "lib.so"
    data = bytearray(lib.read_bytes())
    data[len(data) // 2] ^= 0xFF
    lib.write_bytes(bytes(data))
    assert main(["run", str(d)]) == 2
    err = capsys.readouterr().err.strip()
    assert "lib file" in err and "does not match its manifest" in err and len(err.splitlines()) == 1
    lib.unlink()
    assert main(["run", str(d)]) == 2
    assert "is missing" in capsys.readouterr().err


@pytest.mark.llvm
@pytest.mark.parametrize("edit,argv,needle", [
    (lambda m: m["target"].update(name="edge", arch="aarch64",
                                  target={"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a53"}),
     ["--local"], "is aarch64 code for target 'edge' and this machine is"),
    (lambda m: m["target"]["target"].update(mcpu="some-other-cpu"), [], "on a some-other-cpu CPU"),
    (lambda m: None, ["--target", "server"], "was built for target 'host'"),
    (lambda m: m["versions"].update(tvm="0.19.0"), [], "built with TVM 0.19.0 but this runtime is TVM"),
    (lambda m: m.update(format="something-else"), [], "is not 'tvmq-export/1'"),
])
def test_manifest_from_another_target_or_tvm_is_refused(tiny_export, tmp_path, capsys, edit, argv, needle):
    d = copy_of(tiny_export, tmp_path)
    man = json.loads((d / "manifest.json").read_text())
    edit(man)
    (d / "manifest.json").write_text(json.dumps(man))
    assert main(["run", str(d), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err


def test_bad_export_arguments_are_one_line(tmp_path, capsys):
    assert main(["export", "--out", str(tmp_path / "o")]) == 2
    assert "nothing to export" in capsys.readouterr().err
    assert main(["export", "--workload", "alexnet.conv3", "--variants", "float,fp8", "--out", str(tmp_path / "o")]) == 2
    assert "cannot export variant(s) ['fp8']" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("mine")
    assert main(["export", "--workload", "alexnet.conv3", "--out", str(tmp_path / "full")]) == 2
    assert "not a tvmq export" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "nope")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def _model_with(tmp_path, op_type, domain=""):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 1, 3, 3], np.ones(36, np.float32))
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node(op_type, ["c"], ["y"], name="the_odd_one", domain=domain)]
    g = helper.make_graph(nodes, "g", [x], [y], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 9
    p = tmp_path / f"{op_type}.onnx"
    onnx.save(m, str(p))
    return p


@pytest.mark.parametrize("op,domain,needle", [
    ("NonMaxSuppression", "", "unsupported ONNX operator 'NonMaxSuppression' at node 'the_odd_one'"),
    ("Frobnicate", "com.example", "unsupported ONNX operator 'Frobnicate' (domain 'com.example') at node 'the_odd_one'"),
])
def test_unsupported_onnx_operator_is_named_with_its_node(tmp_path, capsys, op, domain, needle):
    p = _model_with(tmp_path, op, domain)
    assert main(["export", "--model", str(p), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def digits_kmeans(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits") / "kmeans"
    assert main(["export", "--model", str(DIGITS), "--quantize", "kmeans", "--bits", "4", "--out", str(out)]) == 0
    return out


@pytest.mark.llvm
def test_shipped_model_end_to_end_vs_onnxruntime(digits_kmeans, tmp_path):
    man = json.loads((digits_kmeans / "manifest.json").read_text())
    info = man["model"]
    assert info["quantize"]["method"] == "kmeans" and info["quantize"]["bits"] == 4
    # every conv/dense layer on a tvmq kernel that reads packed 4-bit indices and a 16-entry codebook
    assert [r["node"] for r in info["layers"]] == ["conv1", "conv2", "fc"]
    assert all(r["kernel"] for r in info["layers"])
    with np.load(digits_kmeans / "weights.npz", allow_pickle=False) as z:
        assert z["w000_idx"].dtype == np.uint8 and z["w000_cb"].shape == (16,)
        assert z["w001_idx"].size == 16 * 8 * 9 // 2  # two 4-bit indices per byte
    out = tmp_path / "r.json"
    p = run_new_process("run", str(digits_kmeans), "--compare-onnx", str(DIGITS), "--eval", str(DIGITS_DATA),
                        "--json", str(out))
    assert p.returncode == 0, p.stderr
    assert "-> ok" in p.stdout
    r = json.loads(out.read_text())
    assert r["compare_onnx"]["relative"] <= 1e-4
    assert [k["ok"] for k in r["kernels"]] == [True] * 3  # each kernel inside the model vs numpy
    assert r["eval"]["exported"] >= 0.95 and abs(r["eval"]["exported"] - r["eval"]["onnx"]) <= 0.02


@pytest.mark.llvm
def test_float_export_matches_onnxruntime_and_a_wrong_model_fails(tmp_path, capsys):
    import onnx
    from onnx import numpy_helper

    out = tmp_path / "float"
    assert main(["export", "--model", str(DIGITS), "--out", str(out)]) == 0
    assert main(["run", str(out), "--compare-onnx", str(DIGITS)]) == 0
    o = capsys.readouterr().out
    assert "relative" in o and "-> ok" in o
    m = onnx.load(str(DIGITS))
    for t in m.graph.initializer:
        if t.name == "conv2.w":
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t) * 1.1, t.name))
    other = tmp_path / "other.onnx"
    onnx.save(m, str(other))
    assert main(["run", str(out), "--compare-onnx", str(other)]) == 1
    o = capsys.readouterr().out
    assert "FAIL" in o and "not the float model this export was built from" in o


@pytest.mark.rpc
def test_edge_model_runs_on_the_emulated_board(digits_kmeans, private_board, tmp_path, capsys):
    out = tmp_path / "edge"
    assert main(["export", "--target", "edge", "--model", str(DIGITS), "--quantize", "kmeans", "--bits", "4",
                 "--out", str(out)]) == 0
    assert main(["run", str(out), "--compare-onnx", str(DIGITS), "--rpc-tracker", private_board.address]) == 0
    cap = capsys.readouterr()
    assert "-> ok" in cap.out


@pytest.mark.rpc
def test_edge_layer_library_runs_on_the_emulated_board(private_board, tmp_path, capsys):
    wf = tmp_path / "tiny.json"
    wf.write_text(json.dumps(TINY))
    out = tmp_path / "edge"
    assert main(["export", "--target", "edge", "--workload-file", str(wf), "--variants", "float,codebook4,int8",
                 "--out", str(out)]) == 0
    assert main(["run", str(out), "--rpc-tracker", private_board.address]) == 0
    assert "all 3 function(s) match numpy" in capsys.readouterr().err
