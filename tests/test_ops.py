"""Every operator against its numpy reference on odd shapes (llvm tier)."""

import numpy as np
import pytest

from tvmq.errors import TvmqError
from tvmq.ops import make_op
from tvmq.ops.codebook import check_indices
from tvmq.workload import ConvWorkload

pytestmark = pytest.mark.llvm

ODD = [
    ConvWorkload("prime", 1, 5, 13, 11, 7, 3, 3, (1, 1), (1, 1, 1, 1)),
    ConvWorkload("rect_s2_asym_b2", 2, 6, 11, 9, 8, 3, 2, (2, 1), (1, 0, 2, 1)),
    ConvWorkload("s2_5x5", 1, 4, 17, 17, 4, 5, 5, (2, 2), (2, 2, 2, 2)),
]

CASES = [
    ("float", dict(layout="nchw", padding="hard")),
    ("float", dict(layout="nchw", padding="soft")),
    ("float", dict(layout="nhwc", padding="hard")),
    ("float", dict(layout="nhwc", padding="soft")),
    ("float", dict(layout="nchwc", bias=True, relu=True)),
    ("float", dict(layout="nchwc", bias=True, relu=True, residual=True)),
    ("codebook", dict(bits=5, layout="nchw")),
    ("codebook", dict(bits=4, layout="nchwc")),
    ("codebook", dict(bits=2, layout="nhwc")),
    ("codebook", dict(bits=1, layout="nchw")),
    ("codebook", dict(bits=8, entries=256, layout="nchwc")),
    ("codebook", dict(bits=4, layout="nchwc", bias=True, relu=True, residual=True)),
    ("int8", dict(layout="nchwc", epilogue="requant")),
    ("int8", dict(layout="nchw", act="int8", epilogue="dequant")),
    ("int8", dict(layout="nchwc", epilogue="dequant", bias=True, relu=6.0, residual=True)),
    ("int8", dict(layout="nchwc", epilogue="dequant", bias=True, relu=True, residual=True, quant_out=True)),
    ("int8", dict(layout="nchwc", epilogue="dequant", relu=True, residual="uint8", quant_out=True)),
    ("int8", dict(layout="nhwc", epilogue="dequant", bias=True, residual="uint8")),
    ("int8", dict(layout="nhwc", epilogue="int32")),
    ("int8w7", dict(layout="nchwc", epilogue="int32")),
    ("codebook_int8", dict(bits=4, layout="nchwc", epilogue="int32")),
    ("codebook_int8", dict(bits=2, layout="nchw", planar=0)),
    ("codebook_int8", dict(bits=5, layout="nhwc", epilogue="dequant")),
    ("codebook_int8", dict(bits=4, layout="nchwc", epilogue="dequant", bias=True, relu=True, residual=True)),
    ("codebook_int8", dict(bits=4, layout="nchwc", epilogue="dequant", bias=True, quant_out=True)),
    ("codebook_int8", dict(bits=4, layout="nchwc", epilogue="dequant", bias=True, residual="uint8", quant_out=True)),
    ("int16", dict(layout="nchw")),
    ("int4", dict(layout="nchwc")),
    ("im2col_float", {}),
    ("im2col_int8", {}),
    ("im2col_codebook", dict(bits=3)),
]


def run_op(op, seed=0):
    import tvm

    mod = tvm.compile(op.irmodule(), target=tvm.target.Target({"kind": "llvm"})).jit()
    ins = op.make_inputs(np.random.default_rng(seed))
    dev = tvm.cpu()
    args = [tvm.runtime.tensor(a, dev) for a in ins] + [
        tvm.runtime.tensor(np.zeros(op.out_arg.shape, op.out_arg.dtype), dev)]
    mod["main"](*args)
    return args[-1].numpy(), ins


@pytest.mark.parametrize("wl", ODD, ids=lambda w: w.name)
@pytest.mark.parametrize("variant,params", CASES, ids=lambda c: str(c))
def test_operator_matches_numpy(wl, variant, params):
    if "nchwc" == params.get("layout"):
        params = dict(params, ib=1, ob=1) if wl.c_in % 2 else params
    op = make_op(variant, wl, **params)
    out, ins = run_op(op)
    ok, err = op.check(out, ins)
    assert ok, f"{op.name} max error {err}"
    if np.issubdtype(out.dtype, np.integer):
        assert err <= op.int_tol  # integer paths are exact; a rounded float output within one step
        assert len(np.unique(out)) > 3  # not saturated to a constant


def test_fused_residual_is_an_input_of_the_output_shape_that_the_check_sees():
    op = make_op("float", ODD[0], layout="nchwc", ib=1, ob=7, relu=True, residual=True)
    assert op.args[-2].name == "residual" and op.args[-2].shape == op.out_arg.shape
    out, ins = run_op(op)
    assert op.check(out, ins)[0]
    ins[-1] = ins[-1] + 1.0  # a different residual: the reference follows it, the old output is wrong
    assert not op.check(out, ins)[0]


def test_quantized_output_is_the_next_layers_uint8_activations():
    """``quant_out``: the dequant epilogue's float result, quantized with ``out_q = [1 / scale, zp]``
    as the export's Relax quantize does; a wrong zero point in the reference fails the check."""
    op = make_op("int8", ODD[0], layout="nchwc", ib=1, ob=7, epilogue="dequant", relu=True, quant_out=True)
    assert op.args[-2].name == "out_q" and op.args[-2].shape == (2,) and op.out_arg.dtype == "uint8"
    out, ins = run_op(op)
    assert op.check(out, ins)[0] and out.min() >= ins[-1][1] - 0.5  # ReLU, then the zero point
    assert np.mean(out == 255) < 0.05 and len(np.unique(out)) > 20  # a real spread, not saturated
    assert not op.check(np.minimum(out, 254) + 1, ins)[0]  # one step off everywhere: a rounding bug
    ins[-1] = ins[-1] + np.float32([0, 3])
    assert not op.check(out, ins)[0]


def test_names_carry_layout_and_quantization():
    wl = ODD[0]
    assert make_op("codebook", wl, layout="nchw").name == "conv2d_nchw_codebook"
    assert make_op("int8", wl, layout="nhwc").name == "conv2d_nhwc_int8"
    assert make_op("im2col_float", wl).name == "conv2d_im2col_float"


def test_check_detects_a_wrong_output():
    op = make_op("float", ODD[0], layout="nchw")
    out, ins = run_op(op)
    out[0, 0, 0, 0] += 1.0
    assert not op.check(out, ins)[0]


@pytest.mark.parametrize("variant,params,needle", [
    ("codebook", dict(bits=9), "bits must be an integer in 1..8"),
    ("codebook", dict(bits=2, entries=5), "entries must be in 2..4"),
    ("codebook", dict(bits=3, packed=True), "packed indices support bits"),
    ("int8", dict(act="float16"), "unsupported activation dtype"),
    ("float", dict(layout="nchwc", ib=4), "does not divide c_in=5"),
    ("float", dict(layout="chwn"), "unknown layout"),
    ("teleport", {}, "valid variants are"),
])
def test_bad_parameters(variant, params, needle):
    with pytest.raises(TvmqError, match=needle):
        make_op(variant, ODD[0], **params)


def test_index_out_of_codebook_range():
    with pytest.raises(TvmqError, match="out of range for a codebook of 4 entries"):
        check_indices(np.array([0, 3, 4], np.uint8), 4)


def test_int8w7_refuses_8bit_weights():
    op = make_op("int8w7", ConvWorkload("t", 1, 4, 5, 5, 16, 3, 3))
    ins = op.make_inputs(np.random.default_rng(0))
    ins[1][...] = -100
    with pytest.raises(TvmqError, match=r"int8w7 weights must lie in \[-64, 63\]"):
        op.reference(ins)
    with pytest.raises(TvmqError, match="planar must be"):
        make_op("codebook", ConvWorkload("t", 1, 4, 5, 5, 16, 3, 3), bits=4, planar=-1)


@pytest.mark.parametrize("bits,planar", [(1, 0), (2, 16), (4, 16), (4, 64)])
def test_pack_bits_round_trip(bits, planar):
    from tvmq.ops import reference as R

    codes = np.random.default_rng(bits).integers(0, 1 << bits, 1000).astype(np.uint8)
    packed = R.pack_bits(codes, bits, planar)
    assert packed.dtype == np.uint8 and len(packed) * 8 >= 1000 * bits
    assert np.array_equal(R.unpack_bits(packed, bits, 1000, planar), codes)
    if planar:  # byte i of a group holds codes i, i + L, ...: the first L codes are its low bits
        assert np.array_equal(packed[:planar] & ((1 << bits) - 1), codes[:planar])


def test_gathered_grouped_1x1_reads_the_channels_its_table_names():
    # ShuffleNet's grouped 1x1 in one call: 2 groups of 6 input channels, each output block its own table row
    wl = ConvWorkload("g1x1", 1, 6, 5, 7, 32, 1, 1, (1, 1), (0, 0, 0, 0))
    op = make_op("float", wl, layout="nchwc", ib=2, ob=16, data_block=8, gather=24, bias=True, relu=True)
    assert [a.name for a in op.args] == ["data", "weight", "chan", "bias", op.args[-1].name]
    out, ins = run_op(op)
    assert ins[0].shape == (1 * 24 * 5 * 7,) and ins[2].shape == (2, 6)  # the data flat
    ok, err = op.check(out, ins)
    assert ok, f"{op.name} max error {err}"
    ins[2] = np.roll(ins[2], 1, axis=1)  # another table: another output, which the check must see
    assert not op.check(out, ins)[0]
    with pytest.raises(TvmqError, match="1x1"):
        make_op("float", ConvWorkload("g3", 1, 6, 5, 7, 32, 3, 3, (1, 1), (1, 1, 1, 1)), layout="nchwc", ib=2,
                ob=16, data_block=8, gather=24)


@pytest.mark.parametrize("variant,extra", [("int8", {}), ("codebook_int8", {"bits": 4})])
def test_group_read_reads_each_group_at_its_offset(variant, extra):
    # a grouped 1x1 in one call: 3 groups of 8 input channels at data channels 4 + 16 g + c of 48
    wl = ConvWorkload("gr", 1, 8, 5, 7, 48, 1, 1, (1, 1), (0, 0, 0, 0))
    op = make_op(variant, wl, layout="nchwc", ib=4, ob=16, data_block=16, group_read=(3, 4, 16, 48),
                 epilogue="dequant", bias=True, relu=True, **extra)
    out, ins = run_op(op)
    assert ins[0].shape == (1, 3, 5, 7, 16)  # the data: all 48 channels
    ok, err = op.check(out, ins)
    assert ok, f"{op.name} max error {err}"
    ins[0] = np.roll(ins[0], 4, axis=-1)  # the groups' channels moved: another output, which the check must see
    assert not op.check(out, ins)[0]
    with pytest.raises(TvmqError, match="group_read"):  # the last group would read past the data
        make_op(variant, wl, layout="nchwc", ib=4, ob=16, data_block=16, group_read=(3, 4, 20, 48), **extra)
    with pytest.raises(TvmqError, match="multiples of ib"):
        make_op(variant, wl, layout="nchwc", ib=4, ob=16, data_block=16, group_read=(3, 2, 16, 48), **extra)


@pytest.mark.llvm
def test_group_read_on_the_tuned_template_matches_numpy():
    # the template's default schedule (VNNI where the host has it) reads the groups the same way
    import tvm
    from tvmq.export.layers import scheduled_function
    from tvmq.targets import get_target
    from tvmq.task import Task

    wl = ConvWorkload("gr", 1, 36, 6, 6, 4 * 48, 1, 1, (1, 1), (0, 0, 0, 0))
    tgt = get_target("host")
    task = Task.make(wl, "int8", tgt)
    op, func, _, _, _ = scheduled_function(task, [], warn=False, op_overrides={
        "epilogue": "dequant", "bias": True, "group_read": (4, 0, 48, 192), "data_block": 16})
    lib = tvm.compile(tvm.IRModule({"main": func}), target=tgt.tvm_target()).jit()
    ins = op.make_inputs(np.random.default_rng(1))
    args = [tvm.runtime.tensor(a) for a in ins] + [tvm.runtime.tensor(np.zeros(op.out_arg.shape, op.out_arg.dtype))]
    lib["main"](*args)
    ok, err = op.check(args[-1].numpy(), ins)
    assert ok, f"max error {err}"
