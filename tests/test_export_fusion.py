"""Whole-model export across layers: bias/ReLU fused into the kernels, NCHWc kept between them, glue scheduled."""

import json
from pathlib import Path

import numpy as np
import pytest

from onnx_fixtures import save_graph
from tvmq.cli import main

DATA = Path(__file__).resolve().parents[1] / "tvmq" / "data"
DIGITS = DATA / "digits_cnn.onnx"


def _script(mod) -> str:
    return mod["main"].script()


def _run(out: Path, model: Path, tmp_path, capsys) -> dict:
    capsys.readouterr()
    assert main(["run", str(out), "--compare-onnx", str(model), "--json", str(tmp_path / "r.json")]) == 0
    return json.loads((tmp_path / "r.json").read_text())


def residual_net(path: Path, ch: int = 16, skip: str = "Add", proj: bool = False) -> Path:
    """x -> conv0 -> relu (a) -> conv1 -> clip(0, 1) -> conv2 (+ a) -> relu -> conv3 (1x1): a tiny residual net,
    ``ch`` channels inside, the skip an ONNX ``skip`` node (Add, or Sum as in ResNet-50); with ``proj`` the
    skip adds a 1x1 conv of a instead, listed after conv2 (ResNet-50's downsample branch)."""
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(0)

    def conv(name, i, o, k, inp, out):
        w = rng.normal(0, np.sqrt(2 / (i * k * k)), (o, i, k, k)).astype(np.float32)
        b = rng.uniform(-0.1, 0.1, o).astype(np.float32)
        inits.extend([numpy_helper.from_array(w, f"{name}_w"), numpy_helper.from_array(b, f"{name}_b")])
        return helper.make_node("Conv", [inp, f"{name}_w", f"{name}_b"], [out], name=name, kernel_shape=[k, k],
                                pads=[k // 2] * 4)

    inits = [numpy_helper.from_array(np.float32(0.0), "lo"), numpy_helper.from_array(np.float32(1.0), "hi")]
    nodes = [conv("conv0", 3, ch, 3, "x", "c0"), helper.make_node("Relu", ["c0"], ["a"], name="relu0"),
             conv("conv1", ch, ch, 3, "a", "c1"), helper.make_node("Clip", ["c1", "lo", "hi"], ["r1"], name="clip1"),
             conv("conv2", ch, ch, 3, "r1", "c2"), *([conv("proj", ch, ch, 1, "a", "p")] if proj else []),
             helper.make_node(skip, ["c2", "p" if proj else "a"], ["s"], name="skip"),
             helper.make_node("Relu", ["s"], ["r2"], name="relu2"), conv("conv3", ch, 32, 1, "r2", "y")]
    return save_graph(path, "residual", nodes, inits, [1, 3, 8, 8], [1, 32, 8, 8])


@pytest.mark.llvm
def test_digits_convs_carry_their_bias_and_relu_and_match_onnxruntime(tmp_path, capsys):
    from tvmq.export.model import ModelOptions, model_module
    from tvmq.targets import get_target

    b = model_module(DIGITS, get_target("host"), [], ModelOptions(quantize="none"))
    text = _script(b["mod"])
    # no separate bias add or ReLU is left in the graph: both run in the kernels' epilogues
    assert "R.nn.relu" not in text and "R.add(" not in text
    assert text.count("R.call_tir(") == 3
    # conv1 -> conv2 keep the blocked layout: one layout change in (the input), none between them
    assert text.count("R.permute_dims(") == 2  # the input to NCHWc, conv2's output back for the flatten
    out = tmp_path / "digits"
    assert main(["export", "--model", str(DIGITS), "--quantize", "none", "--out", str(out)]) == 0
    man = json.loads((out / "manifest.json").read_text())
    rows = {r["node"]: r for r in man["model"]["layers"]}
    assert rows["conv1"]["fused_epilogue"] == {"bias": True, "relu": True}
    assert rows["conv2"]["fused_epilogue"] == {"bias": True, "relu": True}
    assert rows["conv2"]["input_layout"] == "kept"
    assert rows["fc"]["fused_epilogue"] == {"bias": True, "relu": False}
    funcs = {f["name"]: f for f in man["functions"]}
    assert all(f["make_op"]["bias"] for f in funcs.values())
    # the biases are kernel inputs now, the graph's own bias inputs are gone
    roles = [p["role"] for p in man["model"]["params"]]
    assert "bias" not in roles and roles.count("bias (fused epilogue)") == 3
    r = _run(out, DIGITS, tmp_path, capsys)  # also checks each fused kernel against its numpy reference
    assert r["compare_onnx"]["relative"] <= 1e-4


@pytest.mark.llvm
def test_residual_net_float_int8_and_codebooks_match_onnxruntime(tmp_path, capsys):
    from tvmq.export.model import ModelOptions, model_module
    from tvmq.targets import get_target

    model = residual_net(tmp_path / "res.onnx")
    for q in ("none", "int8", "kmeans", "kmeans_int8"):
        out = tmp_path / q
        assert main(["export", "--model", str(model), "--quantize", q, "--out", str(out)]) == 0
        man = json.loads((out / "manifest.json").read_text())
        rows = {r["node"]: r for r in man["model"]["layers"]}
        # integer activations: a kernel whose output only convs and later kernels' residual adds read
        # writes those convs' uint8 activations (conv0's: read by conv1 and by conv2's skip add)
        q8 = {"quant_out": True} if q in ("int8", "kmeans_int8") else {}
        assert rows["conv0"]["fused_epilogue"] == {"bias": True, "relu": True, **q8}
        assert rows["conv1"]["fused_epilogue"] == {"bias": True, "relu": 1.0, **q8}  # Clip(0, 1): a capped ReLU
        # the skip add (its other operand conv1's blocked input, bound before conv2) and the ReLU after it
        assert rows["conv2"]["fused_epilogue"] == {"bias": True, "residual": "uint8" if q8 else True, "relu": True,
                                                   **q8}
        assert all(("input_quantized_by" in rows[c]) == bool(q8) for c in ("conv1", "conv2", "conv3"))
        # conv3 reads conv2's blocked output directly (int8's VNNI kernels read 4-channel blocks: one
        # transpose from the 16-channel output blocks, not two)
        assert rows["conv1"]["input_layout"] != "converted" and rows["conv3"]["input_layout"] != "converted"
        if q == "none":
            assert rows["conv3"]["input_layout"] == "kept"
        # the skip add is in conv2's kernel: no add left in the graph but the activations' zero points
        text = _script(model_module(model, get_target("host"), [], ModelOptions(quantize=q))["mod"])
        assert text.count("R.add(") == text.count("R.round(") and "R.nn.relu" not in text
        assert text.count("R.round(") == (1 if q8 else 0)  # one quantize pass: the network's input
        r = _run(out, model, tmp_path, capsys)
        assert r["compare_onnx"]["relative"] <= (1e-4 if q in ("none", "kmeans") else 5e-2)


@pytest.mark.llvm
def test_no_uint8_output_for_a_conv_that_runs_on_relax(tmp_path, capsys):
    """int8: conv0's only reader is a dilated conv (no tvmq kernel: Relax's conv2d on float input), so
    conv0 keeps its float output rather than quantizing for a kernel that is not there."""
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(rng.normal(0, 0.3, (16, 3, 3, 3)).astype(np.float32), "w0"),
             numpy_helper.from_array(rng.normal(0, 0.1, (16, 16, 3, 3)).astype(np.float32), "w1")]
    nodes = [helper.make_node("Conv", ["x", "w0"], ["c0"], name="conv0", kernel_shape=[3, 3], pads=[1] * 4),
             helper.make_node("Relu", ["c0"], ["a"], name="relu0"),
             helper.make_node("Conv", ["a", "w1"], ["y"], name="dil", kernel_shape=[3, 3], pads=[2] * 4,
                              dilations=[2, 2])]
    model = save_graph(tmp_path / "dil.onnx", "dil", nodes, inits, [1, 3, 8, 8], [1, 16, 8, 8])
    out = tmp_path / "int8"
    assert main(["export", "--model", str(model), "--quantize", "int8", "--out", str(out)]) == 0
    rows = {r["node"]: r for r in json.loads((out / "manifest.json").read_text())["model"]["layers"]}
    assert rows["dil"]["kernel"] is None and rows["conv0"]["fused_epilogue"] == {"bias": False, "relu": True}
    assert _run(out, model, tmp_path, capsys)["compare_onnx"]["relative"] <= 5e-2


@pytest.mark.llvm
def test_a_projected_skip_fuses_into_the_later_conv(tmp_path, capsys):
    model = residual_net(tmp_path / "proj.onnx", proj=True)
    out = tmp_path / "none"
    assert main(["export", "--model", str(model), "--quantize", "none", "--out", str(out)]) == 0
    rows = {r["node"]: r for r in json.loads((out / "manifest.json").read_text())["model"]["layers"]}
    # the frontend binds conv2's bias add after the proj conv: conv2's kernel still runs first and proj adds it
    assert rows["conv2"]["fused_epilogue"] == {"bias": True, "relu": False}
    assert rows["proj"]["fused_epilogue"] == {"bias": True, "residual": True, "relu": True}
    r = _run(out, model, tmp_path, capsys)
    assert r["compare_onnx"]["relative"] <= 1e-4


@pytest.mark.llvm
def test_amx_kernels_keep_their_blocked_layout_and_take_the_residual(tmp_path, capsys):
    from tvmq.run import amx_permission

    if amx_permission.request() is not None:
        pytest.skip("needs a CPU with AMX (amx_int8) and OS permission")
    model = residual_net(tmp_path / "res64.onnx", ch=64, skip="Sum")
    out = tmp_path / "int8"
    assert main(["export", "--model", str(model), "--quantize", "int8", "--out", str(out)]) == 0
    rows = {r["node"]: r for r in json.loads((out / "manifest.json").read_text())["model"]["layers"]}
    assert [rows[n]["layout"] for n in ("conv1", "conv2", "conv3")] == ["amx"] * 3
    # 16-channel output blocks reblocked to the next kernel's data blocks, never back to NCHW
    for n in ("conv1", "conv2", "conv3"):
        assert rows[n]["input_layout"] == "reblocked 16c->64c", rows[n]["input_layout"]
    assert rows["conv2"]["fused_epilogue"] == {"bias": True, "residual": True, "relu": True}
    r = _run(out, model, tmp_path, capsys)  # each fused kernel against numpy too
    assert r["compare_onnx"]["relative"] <= 5e-2


@pytest.mark.llvm
def test_glue_primfuncs_are_parallel(tmp_path):
    from tvmq.export.glue import glue_funcs
    from tvmq.export.model import ModelOptions, model_module
    from tvmq.targets import get_target

    model = residual_net(tmp_path / "res.onnx")
    # fused int8: what is left between kernels (quantize + layout change) runs parallel
    funcs = glue_funcs(model_module(model, get_target("host"), [], ModelOptions(quantize="int8"))["mod"], 0)
    assert funcs and all("T.parallel(" in f.script() for f in funcs.values())
    # unfused float: bias adds, ReLUs and layout changes; all parallel, all but the transposes vectorized
    funcs = glue_funcs(model_module(model, get_target("host"), [], ModelOptions(quantize="none", fuse=False))["mod"], 0)
    assert len(funcs) >= 4
    for name, f in funcs.items():
        assert "T.parallel(" in f.script(), name
        assert ("T.vectorized(" in f.script()) == ("transpose" not in name), name
    # at their real size (8x8 pixels, 16 channels) they are too small to be worth a second thread
    small = glue_funcs(model_module(model, get_target("host"), [], ModelOptions(quantize="none", fuse=False))["mod"])
    assert not any("T.parallel(" in f.script() for f in small.values())


@pytest.mark.llvm
def test_a_fused_residual_kernel_is_built_from_the_plain_convolutions_records(tmp_path, capsys):
    model = residual_net(tmp_path / "res.onnx")
    log = tmp_path / "logs" / "host.jsonl"
    assert main(["tune", "--model", str(model), "--quantize", "none", "--trials", "6", "--batch-size", "2",
                 "--log", str(log), "--repeat", "2", "--min-repeat-ms", "5"]) == 0
    recs = [json.loads(x) for x in log.read_text().splitlines()]
    assert not any(r["config"].get("residual") for r in recs)  # the tasks tuned are the plain convolutions'
    out = tmp_path / "export"
    assert main(["export", "--model", str(model), "--quantize", "none", "--logs", str(log.parent),
                 "--out", str(out)]) == 0
    man = json.loads((out / "manifest.json").read_text())
    rows = {r["node"]: r for r in man["model"]["layers"]}
    assert rows["conv2"]["fused_epilogue"] == {"bias": True, "residual": True, "relu": True}
    assert rows["conv2"]["schedule"] == "tuned"  # conv2's kernel takes the residual and the record of its task
    funcs = {f["name"]: f for f in man["functions"]}
    assert funcs[rows["conv2"]["kernel"]]["make_op"]["residual"] is True
    r = _run(out, model, tmp_path, capsys)
    assert r["compare_onnx"]["relative"] <= 1e-4


def fire_net(path: Path, ch: int = 16) -> Path:
    """SqueezeNet's fire module between max pools, Inception-style readers after it: x -> conv 3x3 -> relu ->
    max pool 2x2 -> squeeze 1x1 -> relu -> (expand 1x1, expand 3x3) -> relu each -> concat on channels ->
    (conv 1x1 "next"; max pool 3x3 stride 1 -> conv 1x1 "pooled") -> concat."""
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(1)
    inits = []

    def conv(name, i, o, k, inp, out, relu=True):
        w = rng.normal(0, np.sqrt(2 / (i * k * k)), (o, i, k, k)).astype(np.float32)
        b = rng.uniform(-0.1, 0.1, o).astype(np.float32)
        inits.extend([numpy_helper.from_array(w, f"{name}_w"), numpy_helper.from_array(b, f"{name}_b")])
        c = helper.make_node("Conv", [inp, f"{name}_w", f"{name}_b"], [out + "_c" if relu else out], name=name,
                             kernel_shape=[k, k], pads=[k // 2] * 4)
        return [c, helper.make_node("Relu", [out + "_c"], [out], name=f"{name}_relu")] if relu else [c]

    nodes = [*conv("pre", 3, ch, 3, "x", "p"),
             helper.make_node("MaxPool", ["p"], ["pp"], name="pool0", kernel_shape=[2, 2], strides=[2, 2]),
             *conv("squeeze", ch, ch, 1, "pp", "s"), *conv("e1", ch, ch, 1, "s", "a"), *conv("e3", ch, ch, 3, "s", "b"),
             helper.make_node("Concat", ["a", "b"], ["cat"], name="cat", axis=1),
             *conv("next", 2 * ch, ch, 1, "cat", "n", relu=False),
             helper.make_node("MaxPool", ["cat"], ["cp"], name="pool1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             *conv("pooled", 2 * ch, ch, 1, "cp", "q", relu=False),
             helper.make_node("Concat", ["n", "q"], ["y"], name="out", axis=1)]
    return save_graph(path, "fire", nodes, inits, [1, 3, 16, 16], [1, 2 * ch, 8, 8])


@pytest.mark.llvm
def test_int8_kernels_write_uint8_through_concat_and_max_pool(tmp_path, capsys):
    """A fire module in int8: each kernel before a max pool or a channel concat quantizes its output for
    the convs after them (a conv after a max pool takes the pool input's quantization), the pool and the
    concat work on the uint8 blocks, and those convs read them with no quantize pass or layout change;
    the network agrees with onnxruntime within int8 tolerance."""
    model = fire_net(tmp_path / "fire.onnx")
    out = tmp_path / "export"
    assert main(["export", "--model", str(model), "--quantize", "int8", "--out", str(out)]) == 0
    rows = {r["node"]: r for r in json.loads((out / "manifest.json").read_text())["model"]["layers"]}
    for node in ("pre", "squeeze", "e1", "e3"):
        assert rows[node]["fused_epilogue"] == {"bias": True, "relu": True, "quant_out": True}, rows[node]
    for node in ("squeeze", "next", "pooled"):
        assert rows[node]["input_quantized_by"] == "the previous kernel" and rows[node]["input_layout"] == "kept"
    assert rows["pooled"]["activation"]["scale"] == rows["next"]["activation"]["scale"]
    assert _run(out, model, tmp_path, capsys)["compare_onnx"]["ok"]


@pytest.mark.llvm
@pytest.mark.parametrize("dtype", ["float32", "uint8"])
@pytest.mark.parametrize("pool", [(3, 1, 1), (2, 2, 0)], ids=["3x3_s1_pad1", "2x2_s2"])
def test_blocked_max_pool_vectorizes_its_channel_block_and_matches_numpy(dtype, pool):
    """A max pool in NCHW16c runs its 16 channels as one vector under the window's loops (MetaSchedule's
    rule would leave it scalar), parallel over the rest; its output equals numpy's (pad: the least value)."""
    import tvm
    from tvm import relax

    from tvmq.export.glue import compile_model, glue_funcs

    k, s, p = pool
    shape = (1, 2, 9, 9, 16)
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(shape, dtype))
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit(relax.op.nn.max_pool2d(x, (k, k), (s, s), (p, p, p, p), layout="NCHW16c",
                                               out_layout="NCHW16c"))
            o = bb.emit_output(y)
        bb.emit_func_output(o)
    mod = bb.get()
    (f,) = glue_funcs(mod, 0).values()
    assert "T.vectorized(" in f.script() and "T.parallel(" in f.script()
    ex, _ = compile_model(mod, tvm.target.Target({"kind": "llvm"}))
    a = np.random.default_rng(0).integers(0, 255, shape).astype(dtype)
    got = relax.VirtualMachine(ex, tvm.cpu())["main"](tvm.runtime.tensor(a, tvm.cpu())).numpy()
    lo = -np.inf if dtype == "float32" else 0
    pad = np.pad(a.astype(np.float64), [(0, 0), (0, 0), (p, p), (p, p), (0, 0)], constant_values=lo)
    ho = (9 + 2 * p - k) // s + 1
    want = np.array([[[[pad[0, c, i * s:i * s + k, j * s:j * s + k].max(axis=(0, 1)) for j in range(ho)]
                       for i in range(ho)] for c in range(2)]])
    np.testing.assert_array_equal(got, want.astype(dtype))


@pytest.mark.llvm
def test_lrn_power_runs_as_square_roots_and_matches_onnxruntime(tmp_path, capsys):
    """ONNX LRN's ``** 0.75`` (a scalar powf per element) is compiled as sqrt(x) * sqrt(sqrt(x)), which
    vectorizes; the network still agrees with onnxruntime."""
    from onnx import helper, numpy_helper

    from tvmq.export.glue import glue_funcs
    from tvmq.export.model import ModelOptions, model_module
    from tvmq.targets import get_target

    w = np.random.default_rng(0).normal(0, 0.3, (16, 3, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("LRN", ["r"], ["y"], name="lrn", size=5, alpha=1e-2, beta=0.75, bias=1.0)]
    model = save_graph(tmp_path / "lrn.onnx", "lrn", nodes, [numpy_helper.from_array(w, "w")], [1, 3, 16, 16],
                       [1, 16, 16, 16])
    scripts = [f.script() for f in glue_funcs(model_module(model, get_target("host"), [],
                                                           ModelOptions(quantize="none"))["mod"], 0).values()]
    assert any("sqrt" in s for s in scripts) and not any("pow" in s for s in scripts)
    out = tmp_path / "export"
    assert main(["export", "--model", str(model), "--quantize", "none", "--out", str(out)]) == 0
    assert _run(out, model, tmp_path, capsys)["compare_onnx"]["relative"] <= 1e-5


def concat_conv_net(path: Path, ch: int = 16) -> Path:
    """x -> (conv 1x1 -> relu, conv 3x3 -> relu) -> concat -> conv 1x1 to ch // 2 channels -> relu: SqueezeNet's
    expand convs and the next fire module's squeeze."""
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(3)
    inits = []

    def conv(name, i, o, k, inp, out):
        inits.extend([numpy_helper.from_array(rng.normal(0, np.sqrt(2 / (i * k * k)), (o, i, k, k)).astype(np.float32),
                                              f"{name}_w"),
                      numpy_helper.from_array(rng.uniform(-0.1, 0.1, o).astype(np.float32), f"{name}_b")])
        return [helper.make_node("Conv", [inp, f"{name}_w", f"{name}_b"], [out + "_c"], name=name, kernel_shape=[k, k],
                                 pads=[k // 2] * 4), helper.make_node("Relu", [out + "_c"], [out], name=f"{name}_relu")]

    nodes = [*conv("e1", 3, ch, 1, "x", "a"), *conv("e3", 3, ch, 3, "x", "b"),
             helper.make_node("Concat", ["a", "b"], ["cat"], name="cat", axis=1), *conv("squeeze", 2 * ch, ch // 2, 1, "cat", "y")]
    return save_graph(path, "concat_conv", nodes, inits, [1, 3, 8, 8], [1, ch // 2, 8, 8])


@pytest.mark.llvm
def test_float_conv_of_a_concat_runs_per_part_with_the_partial_sum_fused(tmp_path, capsys):
    """Float: the narrow conv after a concat runs as one kernel per concat input, the second adding the
    first's partial sum in its epilogue (with the bias on the first and the ReLU on the last), so the
    concat is never copied; the network agrees with onnxruntime."""
    model = concat_conv_net(tmp_path / "cc.onnx")
    out = tmp_path / "export"
    assert main(["export", "--model", str(model), "--quantize", "none", "--out", str(out)]) == 0
    man = json.loads((out / "manifest.json").read_text())
    rows = {r["node"]: r for r in man["model"]["layers"]}
    assert "squeeze" not in rows and rows["squeeze.part0"]["workload"]["c_in"] == 16
    assert rows["squeeze.part0"]["fused_epilogue"] == {"bias": True, "relu": False}
    assert rows["squeeze.part1"]["fused_epilogue"] == {"bias": False, "relu": True, "residual": True}
    assert all(r["input_layout"] == "kept" for r in rows.values() if r["node"].startswith("squeeze"))
    assert _run(out, model, tmp_path, capsys)["compare_onnx"]["relative"] <= 1e-5
    from tvmq.export.glue import glue_funcs
    from tvmq.export.model import ModelOptions, model_module
    from tvmq.targets import get_target

    glue = glue_funcs(model_module(model, get_target("host"), [], ModelOptions(quantize="none"))["mod"], 0)
    assert not any("concat" in name for name in glue), sorted(glue)


@pytest.mark.llvm
@pytest.mark.parametrize("pool,c_out,c_pad", [("GlobalAveragePool", 520, 544), ("GlobalMaxPool", 520, 544),
                                              ("ReduceMean", 32, 32)])
def test_a_global_pool_reads_the_kernels_blocked_output(tmp_path, capsys, pool, c_out, c_pad):
    """A mean or max over H and W after a kernel runs on the kernel's NCHW{b}c output, its channel block
    vectorized, and only the pooled vector is reshaped (and its padded channels sliced off): no layout
    change of the feature map. A float classifier on a feature map pads its channels to 32 (520 -> 544).
    The network agrees with onnxruntime."""
    from onnx import helper, numpy_helper

    from tvmq.export.glue import glue_funcs
    from tvmq.export.model import ModelOptions, model_module
    from tvmq.targets import get_target

    rng = np.random.default_rng(5)
    inits = [numpy_helper.from_array(rng.normal(0, 0.3, (c_out, 8, 1, 1)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.uniform(-0.1, 0.1, c_out).astype(np.float32), "b")]
    attrs = {"axes": [2, 3], "keepdims": 0} if pool == "ReduceMean" else {}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="cls", kernel_shape=[1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node(pool, ["r"], ["y"], name="pool", **attrs)]
    y_shape = [1, c_out] if pool == "ReduceMean" else [1, c_out, 1, 1]
    model = save_graph(tmp_path / "gp.onnx", "gp", nodes, inits, [1, 8, 6, 6], y_shape)
    glue = glue_funcs(model_module(model, get_target("host"), [], ModelOptions(quantize="none"))["mod"], 0)
    assert sum("transpose" in name for name in glue) == 1, sorted(glue)  # only the input's, into NCHW{b}c
    (red,) = [f.script() for name, f in glue.items() if name in ("mean", "max")]
    assert "T.vectorized(T.int64(16))" in red and "T.int64(6), T.int64(6), T.int64(16)" in red  # NCHW16c in
    out = tmp_path / "export"
    assert main(["export", "--model", str(model), "--quantize", "none", "--out", str(out)]) == 0
    (row,) = json.loads((out / "manifest.json").read_text())["model"]["layers"]
    assert row["workload"]["c_out"] == c_pad and row["fused_epilogue"] == {"bias": True, "relu": True}
    assert _run(out, model, tmp_path, capsys)["compare_onnx"]["relative"] <= 1e-5


@pytest.mark.llvm
@pytest.mark.parametrize("quantize", ["none", "int8"])
def test_a_whole_map_average_pool_of_a_concat_reads_its_blocks(tmp_path, capsys, quantize):
    """Inception-v1's head: a concat of two kernels' outputs, an AveragePool whose window is the whole map,
    then a Gemm whose weight comes through a Reshape and its bias from a ConstantOfShape. The pool runs on
    the concat's blocks (uint8 ones under int8, dequantized on the way), the constants fold, and the Gemm
    runs on a tvmq kernel; the network agrees with onnxruntime."""
    from onnx import helper, numpy_helper

    from tvmq.export.glue import glue_funcs
    from tvmq.export.model import ModelOptions, model_module
    from tvmq.targets import get_target

    rng = np.random.default_rng(6)
    inits = [numpy_helper.from_array(rng.normal(0, 0.3, (16, 3, 3, 3)).astype(np.float32), "w0"),
             numpy_helper.from_array(rng.normal(0, 0.3, (16, 3, 1, 1)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(0, 0.2, (10 * 32,)).astype(np.float32), "fc_w_flat"),
             numpy_helper.from_array(np.array([10, 32], np.int64), "fc_shape"),
             numpy_helper.from_array(np.array([10], np.int64), "fc_b_shape"),
             numpy_helper.from_array(np.array([1, 32], np.int64), "flat")]
    nodes = [helper.make_node("Conv", ["x", "w0"], ["c0"], name="a", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c0"], ["r0"], name="relu_a"),
             helper.make_node("Conv", ["x", "w1"], ["c1"], name="b", kernel_shape=[1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu_b"),
             helper.make_node("Concat", ["r0", "r1"], ["cat"], name="cat", axis=1),
             helper.make_node("AveragePool", ["cat"], ["p"], name="pool", kernel_shape=[7, 7]),
             helper.make_node("Reshape", ["p", "flat"], ["f"], name="flatten"),
             helper.make_node("Reshape", ["fc_w_flat", "fc_shape"], ["fc_w"], name="fc_w_reshape"),
             helper.make_node("ConstantOfShape", ["fc_b_shape"], ["fc_b"], name="fc_b_fill",
                              value=numpy_helper.from_array(np.array([0.5], np.float32))),
             helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["y"], name="fc", transB=1)]
    model = save_graph(tmp_path / "head.onnx", "head", nodes, inits, [1, 3, 7, 7], [1, 10])
    glue = glue_funcs(model_module(model, get_target("host"), [], ModelOptions(quantize=quantize))["mod"], 0)
    assert sum("transpose" in name for name in glue) == 1, sorted(glue)  # only the input's, into NCHW{b}c
    out = tmp_path / "export"
    assert main(["export", "--model", str(model), "--quantize", quantize, "--out", str(out)]) == 0
    rows = {r["node"]: r for r in json.loads((out / "manifest.json").read_text())["model"]["layers"]}
    assert rows["fc"]["kernel"] and rows["fc"]["fused_epilogue"]["bias"]
    res = _run(out, model, tmp_path, capsys)["compare_onnx"]
    assert res["ok"] and (quantize != "none" or res["relative"] <= 1e-5)
