"""export/gathered.py and export/channel_maps.py: ShuffleNet's units (grouped 1x1, channel shuffle,
depthwise, residual add, a stride-2 unit's pool and concat) on one gathered call per grouped conv, the
shuffle moving no data; outputs against onnxruntime."""

import json
from pathlib import Path

import numpy as np
import pytest

from onnx_fixtures import save_graph
from tvmq.cli import main


def shuffle_units(path: Path) -> Path:
    """Three ShuffleNet units, 4 groups: on 24 channels (8x8) a stride-1 unit with its residual add, a
    stride-2 unit whose output concatenates an average pool of its input (40 + 24 channels), then a
    stride-1 unit on those 64 (4x4), whose residual is in the concat's map, not its conv's; a global pool."""
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(0)

    def t(n, s):
        return numpy_helper.from_array((rng.standard_normal(s) * 0.3).astype(np.float32), n)

    inits = [t("w1", (24, 6, 1, 1)), t("b1", (24,)), t("wd", (24, 1, 3, 3)), t("bd", (24,)), t("w2", (24, 6, 1, 1)),
             t("b2", (24,)), t("w3", (24, 6, 1, 1)), t("b3", (24,)), t("we", (24, 1, 3, 3)), t("be", (24,)),
             t("w4", (40, 6, 1, 1)), t("b4", (40,)), t("w5", (64, 16, 1, 1)), t("b5", (64,)), t("wf", (64, 1, 3, 3)),
             t("bf", (64,)), t("w6", (64, 16, 1, 1)), t("b6", (64,)),
             numpy_helper.from_array(np.array([1, 4, 6, 8, 8], np.int64), "s5"),
             numpy_helper.from_array(np.array([1, 24, 8, 8], np.int64), "s4"),
             numpy_helper.from_array(np.array([1, 4, 16, 4, 4], np.int64), "t5"),
             numpy_helper.from_array(np.array([1, 64, 4, 4], np.int64), "t4")]
    N = helper.make_node

    def shuffle(x, y, s5="s5", s4="s4"):
        return [N("Reshape", [x, s5], [y + "a"]), N("Transpose", [y + "a"], [y + "b"], perm=[0, 2, 1, 3, 4]),
                N("Reshape", [y + "b", s4], [y])]

    nodes = [N("Conv", ["x", "w1", "b1"], ["c1"], name="g1", kernel_shape=[1, 1], group=4), N("Relu", ["c1"], ["r1"]),
             *shuffle("r1", "h1"),
             N("Conv", ["h1", "wd", "bd"], ["d1"], name="dw", kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=24),
             N("Conv", ["d1", "w2", "b2"], ["c2"], name="g2", kernel_shape=[1, 1], group=4),
             N("Add", ["c2", "x"], ["a1"]), N("Relu", ["a1"], ["u1"]),
             N("Conv", ["u1", "w3", "b3"], ["c3"], name="g3", kernel_shape=[1, 1], group=4), N("Relu", ["c3"], ["r3"]),
             *shuffle("r3", "h3"),
             N("Conv", ["h3", "we", "be"], ["d2"], name="dw2", kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2],
               group=24),
             N("Conv", ["d2", "w4", "b4"], ["c4"], name="g4", kernel_shape=[1, 1], group=4),
             N("AveragePool", ["u1"], ["p1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
             N("Concat", ["c4", "p1"], ["cc"], axis=1), N("Relu", ["cc"], ["u2"]),
             N("Conv", ["u2", "w5", "b5"], ["c5"], name="g5", kernel_shape=[1, 1], group=4), N("Relu", ["c5"], ["r5"]),
             *shuffle("r5", "h5", "t5", "t4"),
             N("Conv", ["h5", "wf", "bf"], ["d3"], name="dw3", kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=64),
             N("Conv", ["d3", "w6", "b6"], ["c6"], name="g6", kernel_shape=[1, 1], group=4),
             N("Add", ["c6", "u2"], ["a3"]), N("Relu", ["a3"], ["u3"]), N("GlobalAveragePool", ["u3"], ["y"])]
    return save_graph(path, "shuffle_units", nodes, inits, [1, 24, 8, 8], [1, 64, 1, 1])


@pytest.mark.llvm
def test_shuffle_units_run_one_gathered_call_per_grouped_conv_and_match_onnxruntime(tmp_path, capsys):
    src = shuffle_units(tmp_path / "s.onnx")
    out = tmp_path / "export"
    assert main(["export", "--model", str(src), "--quantize", "none", "--out", str(out)]) == 0
    rows = {r["node"]: r for r in json.loads((out / "manifest.json").read_text())["model"]["layers"]}
    assert {n: rows[n]["input_layout"] for n in rows} == {"g1": "gathered", "dw": "mapped", "g2": "gathered",
                                                          "g3": "gathered", "dw2": "mapped", "g4": "gathered",
                                                          "g5": "gathered", "dw3": "mapped", "g6": "gathered"}
    for g in ("g2", "g6"):  # the add reads x laid out in g2's map, u2 remapped from the concat's to g6's
        assert rows[g]["fused_epilogue"] == {"bias": True, "relu": True, "residual": True}
    assert rows["g4"]["pieces"][0]["out_rows"] == [g * 16 + k for g in range(4) for k in range(10)]
    # the depthwise conv runs on the shuffled map: its logical channel c sits where the shuffle put it
    p = np.arange(24)
    shuffled = (p % 4) * 6 + p // 4  # logical channel p after the shuffle is channel shuffled[p] before it
    assert rows["dw"]["pieces"][0]["out_rows"] == [(c // 6) * 16 + c % 6 for c in shuffled]
    capsys.readouterr()
    assert main(["run", str(out), "--compare-onnx", str(src), "--json", str(tmp_path / "r.json")]) == 0
    r = json.loads((tmp_path / "r.json").read_text())["compare_onnx"]
    assert r["ok"] and r["relative"] <= 1e-4


@pytest.mark.llvm
def test_the_shuffle_moves_no_data(tmp_path):
    from tvmq.export.model import model_module
    from tvmq.export.onnx_prep import ModelOptions
    from tvmq.targets import get_target

    src = shuffle_units(tmp_path / "s.onnx")
    text = model_module(str(src), get_target("host"), [], ModelOptions(quantize="none").check())["mod"]["main"].script()
    assert "R.call_tir" in text
    assert "axes=[0, 2, 1, 3, 4]" not in text  # the shuffle's transpose is gone, only its map remains
    assert "R.split" not in text  # nor a split into groups


@pytest.mark.llvm
@pytest.mark.parametrize("quantize", ["int8", "kmeans_int8"])
def test_integer_shuffle_units_read_their_groups_in_one_call_and_match_onnxruntime(tmp_path, capsys, quantize):
    # the VNNI kernel reads 4 channels at a time: a unit's input is read where its producer put each group,
    # a shuffle's output is packed once (group g at g * 8: 6 channels padded to 8)
    src = shuffle_units(tmp_path / "s.onnx")
    out = tmp_path / "export"
    bits = ["--bits", "4"] if quantize == "kmeans_int8" else []
    assert main(["export", "--model", str(src), "--quantize", quantize, *bits, "--out", str(out)]) == 0
    rows = {r["node"]: r for r in json.loads((out / "manifest.json").read_text())["model"]["layers"]}
    assert {n: rows[n]["input_layout"] for n in rows} == {
        "g1": "packed, group read (base 0, stride 8)", "dw": "mapped", "g2": "packed, group read (base 0, stride 8)",
        "g3": "group read (base 0, stride 16)", "dw2": "mapped", "g4": "packed, group read (base 0, stride 8)",
        "g5": "packed, group read (base 0, stride 16)", "dw3": "mapped", "g6": "packed, group read (base 0, stride 16)"}
    assert all(len(r["pieces"]) == 1 for r in rows.values())  # one call per conv
    assert rows["g2"]["fused_epilogue"] == {"bias": True, "relu": True, "residual": True}
    capsys.readouterr()
    assert main(["run", str(out), "--compare-onnx", str(src), "--json", str(tmp_path / "r.json")]) == 0
    r = json.loads((tmp_path / "r.json").read_text())["compare_onnx"]
    assert r["ok"] and r["relative"] <= 0.01
