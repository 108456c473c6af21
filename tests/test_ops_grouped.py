"""Grouped and depthwise convolutions (tvmq/ops/grouped.py, templates/conv2d_grouped.py, export/grouped.py):
workload keys and FLOPs, the numpy reference, kernels against it under sampled configs, tuning end to end,
and a tiny conv -> depthwise -> conv ONNX net exported on the grouped kernel against onnxruntime."""

import json

import numpy as np
import pytest

from tvmq.errors import TvmqError
from tvmq.ops import make_op
from tvmq.ops import reference as R
from tvmq.workload import ConvWorkload, resolve

# MobileNet-v2's depthwise layers (32x112x112, 96x112x112 s2, 144x56x56, 960x7x7) at small sizes, plus
# grouped convolutions with several channels per group (ShuffleNet-like) and one with a multiplier.
SHAPES = [
    ConvWorkload("dw32", 1, 32, 14, 14, 32, 3, 3, (1, 1), (1, 1, 1, 1), 32),
    ConvWorkload("dw96_s2", 1, 96, 12, 12, 96, 3, 3, (2, 2), (1, 1, 1, 1), 96),
    ConvWorkload("dw144", 1, 144, 7, 9, 144, 3, 3, (1, 1), (1, 1, 1, 1), 144),
    ConvWorkload("dw960_7x7", 1, 960, 7, 7, 960, 3, 3, (1, 1), (1, 1, 1, 1), 960),
    ConvWorkload("dw_b2_s2_odd", 2, 8, 9, 7, 8, 3, 3, (2, 2), (1, 1, 1, 1), 8),
    ConvWorkload("g3_shuffle", 1, 24, 8, 8, 48, 3, 3, (1, 1), (1, 1, 1, 1), 3),
    ConvWorkload("g4_1x1", 1, 32, 6, 6, 32, 1, 1, (1, 1), (0, 0, 0, 0), 4),
    ConvWorkload("mult2_s2", 1, 8, 9, 9, 16, 3, 3, (2, 2), (1, 1, 1, 1), 8),
]


# -- pure Python: workload and reference -----------------------------------------
def test_groups_leave_ungrouped_keys_alone_and_count_flops_per_group():
    wl = resolve("alexnet.conv3")[0]
    assert wl.groups == 1 and "groups" not in wl.to_dict()
    assert wl.key == "n1_c256_h13_w13_o384_k3x3_s1x1_p1.1.1.1"  # committed logs are keyed by it
    dw = ConvWorkload.from_dict({"name": "dw", "c_in": 32, "h": 112, "w": 112, "c_out": 32, "k": 3, "pad": 1,
                                 "groups": 32})
    assert dw.depthwise and dw.key.endswith("_g32") and dw.to_dict()["groups"] == 32
    assert ConvWorkload.from_dict(dw.to_dict()) == dw
    assert dw.flops == 2 * 112 * 112 * 32 * 1 * 9
    assert dw.bytes()["weights"] == 32 * 9 * 4
    g = ConvWorkload("g", 1, 24, 8, 8, 48, 3, 3, (1, 1), (1, 1, 1, 1), 3)
    assert not g.depthwise and g.flops == 2 * 64 * 48 * 8 * 9
    with pytest.raises(TvmqError, match="groups=5 must divide c_in=24"):
        ConvWorkload("bad", 1, 24, 8, 8, 48, 3, 3, groups=5)


def test_suite_has_mobilenet_v2_depthwise_layers():
    layers = resolve("mobilenet_v2_dw")
    assert all(w.depthwise and w.kh == 3 for w in layers)
    assert {(w.c_in, w.h, w.stride[0]) for w in layers} >= {(32, 112, 1), (96, 112, 2), (144, 56, 1), (960, 7, 1)}


def test_grouped_reference_is_per_group_conv2d():
    rng = np.random.default_rng(0)
    for wl in SHAPES[4:]:
        x = rng.standard_normal((wl.n, wl.c_in, wl.h, wl.w))
        w = rng.standard_normal((wl.c_out, wl.c_in_per_group, wl.kh, wl.kw))
        y = R.conv2d_grouped_nchw(x, w, wl)
        ipg, opg = wl.c_in_per_group, wl.c_out // wl.groups
        one = ConvWorkload("one", wl.n, ipg, wl.h, wl.w, opg, wl.kh, wl.kw, wl.stride, wl.pad)
        for gi in range(wl.groups):
            want = R.conv2d_nchw(x[:, gi * ipg:(gi + 1) * ipg], w[gi * opg:(gi + 1) * opg], one)
            np.testing.assert_allclose(y[:, gi * opg:(gi + 1) * opg], want, atol=1e-9)


def test_direct_operators_refuse_grouped_workloads():
    with pytest.raises(TvmqError, match="groups=32: operator 'float' computes an ordinary convolution"):
        make_op("float", SHAPES[0])
    with pytest.raises(TvmqError, match="groups=1 is an ordinary convolution"):
        make_op("grouped_float", resolve("alexnet.conv3")[0])


def test_tasks_refuse_a_variant_of_the_other_family_in_one_line():
    from tvmq.targets import get_target
    from tvmq.task import Task

    target = get_target("host")
    with pytest.raises(TvmqError, match="groups=32 and variant 'float' is for ordinary convolutions; grouped"):
        Task.make(SHAPES[0], "float", target)
    with pytest.raises(TvmqError, match="variant 'depthwise_float' is for grouped convolutions only"):
        Task.make(resolve("alexnet.conv3")[0], "depthwise_float", target)
    assert Task.make(SHAPES[0], "depthwise_int8", target).template == "conv2d_grouped"


def test_export_routing_workload_and_task_variant():
    from tvmq.export.grouped import task_variant, workload_of

    wl = workload_of("blk/dw", (1, 96, 112, 112), (96, 1, 3, 3), 96, (2, 2), (1, 1, 1, 1))
    assert wl.name == "blk_dw" and wl.depthwise and (wl.out_h, wl.out_w) == (56, 56)
    assert task_variant(wl, "int8", "int8", {}) == ("grouped_int8", {})
    # codebooks: the grouped kernel of the same activations, on weights decoded at export
    assert task_variant(wl, "kmeans", "codebook", {"bits": 5}) == ("grouped_float", {})
    assert task_variant(wl, "kmeans_int8", "codebook_int8", {"bits": 4}) == ("grouped_int8", {})
    with pytest.raises(TvmqError, match="dilation"):
        workload_of("d", (1, 8, 8, 8), (8, 1, 3, 3), 8, (1, 1), (2, 2, 2, 2), (2, 2))


def test_space_resolves_for_grouped_workloads():
    from tvmq.space import Space

    for wl in SHAPES:
        for v in ("grouped_float", "grouped_int8"):
            sp = Space.load(wl, v)
            assert sp.template == "conv2d_grouped" and sp.is_valid(sp.default)
            assert wl.c_in % sp.default["cb"] == 0 and wl.c_out % sp.default["cb"] == 0


# -- llvm: kernels against numpy ----------------------------------------------------
def _run(op, rng, sch=None):
    import tvm

    mod = sch.mod if sch is not None else op.irmodule()
    f = tvm.compile(mod, target="llvm")
    ins = op.make_inputs(rng)
    a = op.out_arg
    out = tvm.runtime.tensor(np.zeros(a.shape, a.dtype))
    f(*[tvm.runtime.tensor(x) for x in ins], out)
    return out.numpy(), ins


@pytest.mark.llvm
@pytest.mark.parametrize("wl", SHAPES, ids=lambda w: w.name)
@pytest.mark.parametrize("variant", ["grouped_float", "grouped_int8"])
def test_kernels_match_numpy_under_sampled_configs(wl, variant):
    from tvmq.space import Space
    from tvmq.templates import instantiate

    rng = np.random.default_rng(hash((wl.name, variant)) % 2**32)
    sp = Space.load(wl, variant)
    for cfg in [sp.default, sp.sample(rng), sp.sample(rng)]:
        op, sch = instantiate(sp, variant, wl, {}, cfg)
        out, ins = _run(op, rng, sch)
        ok, err = op.check(out, ins)
        assert ok, (cfg, err)
        if variant == "grouped_int8":  # the requant multiplier keeps outputs spread over int8, not all 0 / clipped
            assert len(np.unique(out)) > 20


@pytest.mark.llvm
@pytest.mark.parametrize("variant,params", [
    ("grouped_float", dict(bias=True, relu=6.0)),
    ("grouped_float", dict(cb=4, bias=True, relu=True)),
    ("grouped_int8", dict(epilogue="dequant", bias=True, relu=True)),
    ("grouped_int8", dict(epilogue="dequant", bias=True, relu=6.0, quant_out=True)),
    ("grouped_int8", dict(epilogue="int32")),
])
def test_epilogues(variant, params):
    rng = np.random.default_rng(1)
    for wl in (SHAPES[1], SHAPES[5]):
        op = make_op(variant, wl, **params)
        out, ins = _run(op, rng)
        ok, err = op.check(out, ins)
        assert ok, err


@pytest.mark.llvm
@pytest.mark.parametrize("variant", ["grouped_float", "grouped_int8"])
@pytest.mark.parametrize("wl,cb,xb", [(SHAPES[1], 16, 32), (SHAPES[1], 16, 48), (SHAPES[5], 8, 24), (SHAPES[5], 8, 4)],
                         ids=["dw_16in32", "dw_16in48", "g3_8in24", "g3_8in4"])
def test_data_block_reads_the_producers_block(variant, wl, cb, xb):
    """``data_block``: the input in NCHW{xb}c as the previous kernel wrote it, the output still in ``cb``
    blocks; the same numbers as numpy."""
    op = make_op(variant, wl, cb=cb, data_block=xb)
    assert op.args[0].shape[-1] == xb and op.out_arg.shape[-1] == cb
    out, ins = _run(op, np.random.default_rng(2))
    ok, err = op.check(out, ins)
    assert ok, err


@pytest.mark.llvm
def test_depthwise_data_block_must_hold_whole_vectors():
    with pytest.raises(TvmqError, match="multiple of cb=16"):
        make_op("grouped_float", SHAPES[1], cb=16, data_block=8)


@pytest.mark.llvm
def test_tune_a_depthwise_layer_end_to_end(tmp_path, capsys):
    from tvmq.cli import main

    layer = tmp_path / "dw.json"
    layer.write_text(json.dumps([{"name": "dw144_s2", "c_in": 144, "h": 14, "w": 14, "c_out": 144, "k": 3,
                                  "stride": 2, "pad": 1, "groups": 144}]))
    out = tmp_path / "out.json"
    assert main(["tune", "--target", "host", "--workload-file", str(layer), "--variants", "depthwise_float",
                 "--trials", "4", "--log", str(tmp_path / "log.jsonl"), "--json", str(out)]) == 0
    capsys.readouterr()
    recs = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert recs and all(r["template"] == "conv2d_grouped" for r in recs)
    assert any(r["status"] == "ok" for r in recs)


# -- llvm: a model with a depthwise layer, exported on the grouped kernel -----------------
def _tiny_dw_net(seed=0, stride=1):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)

    def init(name, *shape):
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], name="pw1", kernel_shape=[1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="dw", kernel_shape=[3, 3], group=16,
                         strides=[stride, stride], pads=[1, 1, 1, 1]),
        helper.make_node("Clip", ["c2", "lo", "hi"], ["r2"]),
        helper.make_node("Conv", ["r2", "w3"], ["output"], name="pw2", kernel_shape=[1, 1]),
    ]
    inits = [init("w1", 16, 8, 1, 1), init("b1", 16), init("w2", 16, 1, 3, 3), init("b2", 16),
             init("w3", 8, 16, 1, 1), numpy_helper.from_array(np.float32(0.0), "lo"),
             numpy_helper.from_array(np.float32(6.0), "hi")]
    g = helper.make_graph(nodes, "tiny_dw", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 8, 12, 12])],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 9
    return m


@pytest.mark.llvm
@pytest.mark.parametrize("stride", [1, 2])
def test_conv_depthwise_conv_exports_on_the_grouped_kernel_and_matches_onnxruntime(tmp_path, capsys, stride):
    import onnx

    from tvmq.cli import main

    src = tmp_path / "tiny_dw.onnx"
    onnx.save(_tiny_dw_net(stride=stride), str(src))
    out = tmp_path / "export"
    assert main(["export", "--model", str(src), "--quantize", "none", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "no tvmq kernel" not in err  # nothing fell back to Relax's conv2d
    man = json.loads((out / "manifest.json").read_text())
    text = json.dumps(man)
    assert "grouped_float" in text
    assert main(["run", str(out), "--compare-onnx", str(src)]) == 0
    assert "-> ok" in capsys.readouterr().out



@pytest.mark.llvm
@pytest.mark.slow
def test_int8_export_runs_the_depthwise_layer_on_grouped_int8(tmp_path, capsys):
    """--quantize int8: the depthwise conv on grouped_int8 (dequant epilogue with bias and ReLU6 fused),
    its input kept in the previous kernel's NCHWc; within int8 tolerance of onnxruntime (about 50 s)."""
    import onnx

    from tvmq.cli import main

    src = tmp_path / "tiny_dw.onnx"
    onnx.save(_tiny_dw_net(), str(src))
    out = tmp_path / "export8"
    assert main(["export", "--model", str(src), "--quantize", "int8", "--out", str(out)]) == 0
    rows = {r["node"]: r for r in json.loads((out / "manifest.json").read_text())["model"]["layers"]}
    assert rows["dw"]["kernel"].endswith("__grouped_int8") and rows["dw"]["input_layout"] == "kept"
    # each kernel writes the uint8 activations the next one reads: no quantize pass between them
    assert rows["pw1"]["fused_epilogue"] == {"bias": True, "relu": True, "quant_out": True}
    assert rows["dw"]["fused_epilogue"] == {"bias": True, "relu": 6.0, "quant_out": True}
    assert rows["dw"]["input_quantized_by"] == rows["pw2"]["input_quantized_by"] == "the previous kernel"
    capsys.readouterr()
    assert main(["run", str(out), "--compare-onnx", str(src)]) == 0
    cap = capsys.readouterr()
    assert "-> ok" in cap.out + cap.err

@pytest.mark.llvm
@pytest.mark.parametrize("quantize,variant", [("kmeans", "grouped_float"), ("kmeans_int8", "grouped_int8")])
def test_codebook_export_runs_the_depthwise_layer_on_decoded_weights(tmp_path, capsys, quantize, variant):
    """Codebook quantizations: the depthwise layer on the grouped kernel of its activations, its weights
    decoded from the codebook at export (not Relax's conv2d); the output agrees with onnxruntime."""
    import onnx

    from tvmq.cli import main

    src = tmp_path / "tiny_dw.onnx"
    onnx.save(_tiny_dw_net(), str(src))
    out = tmp_path / quantize
    assert main(["export", "--model", str(src), "--quantize", quantize, "--bits", "4", "--out", str(out)]) == 0
    assert "no tvmq kernel" not in capsys.readouterr().err
    man = json.loads((out / "manifest.json").read_text())
    rows = {r["node"]: r for r in man["model"]["layers"]}
    assert rows["dw"]["kernel"].endswith("__" + variant)
    roles = [p["role"] for p in man["model"]["params"] if p.get("layer") == "dw" or "dw" in p.get("name", "")]
    assert any("decoded from the codebook" in r for r in roles), roles
    assert main(["run", str(out), "--compare-onnx", str(src)]) == 0
    cap = capsys.readouterr()
    assert "-> ok" in cap.out + cap.err


@pytest.mark.llvm
def test_layer_export_of_depthwise_variants_runs_verified(tmp_path, capsys):
    from tvmq.cli import main

    layer = tmp_path / "dw.json"
    layer.write_text(json.dumps([{"name": "dw", "c_in": 32, "h": 10, "w": 10, "c_out": 32, "k": 3, "pad": 1,
                                  "groups": 32}]))
    out = tmp_path / "lay"
    assert main(["export", "--target", "host", "--workload-file", str(layer), "--variants",
                 "depthwise_float,depthwise_int8", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["run", str(out)]) == 0
    cap = capsys.readouterr()
    assert "all 2 function(s) match numpy" in cap.out + cap.err


@pytest.mark.llvm
def test_edge_kernels_use_neon_fma_and_widening_int8_multiply_adds():
    """Compiled for the Cortex-A53 (no board needed to read the assembly): NEON FMAs for float,
    smlal/smull widening multiply-adds for int8."""
    import re

    import tvm

    from tvmq.build.cross import asm
    from tvmq.space import Space
    from tvmq.targets import get_target
    from tvmq.templates import instantiate

    t = get_target("edge")
    wl = SHAPES[3]  # 960x7x7 depthwise
    for variant, pattern in (("grouped_float", r"fmla\tv\d+\.4s"), ("grouped_int8", r"smlal2?\tv|smull2?\tv")):
        sp = Space.load(wl, variant, features=t.features())
        _, sch = instantiate(sp, variant, wl, {}, sp.default)
        text = asm(tvm.compile(sch.mod, target=tvm.target.Target(t.target)))
        assert len(re.findall(pattern, text)) >= 16, variant
