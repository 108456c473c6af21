"""Intel AMX: tile configuration, the int8 convolution's assembly (compiles anywhere), and its exact
result against numpy (only on a CPU with AMX whose OS grants tile state)."""

import numpy as np
import pytest

from tvmq.build.cross import asm, count_instructions
from tvmq.errors import TvmqError
from tvmq.run import amx_permission
from tvmq.templates import amx, amx_int8
from tvmq.workload import ConvWorkload

SPR = {"kind": "llvm", "mcpu": "sapphirerapids", "num-cores": 2}
SMALL = ConvWorkload("small", 1, 64, 8, 8, 32, 3, 3, (1, 1), (1, 1, 1, 1))
ODD = ConvWorkload("odd", 1, 128, 13, 13, 64, 3, 3, (1, 1), (1, 1, 1, 1))  # 13 x 13 out, like alexnet conv3-5
STRIDED = ConvWorkload("strided", 1, 128, 17, 17, 64, 3, 3, (2, 2), (1, 0, 1, 0))
C96 = ConvWorkload("c96", 1, 96, 9, 9, 32, 5, 5, (1, 1), (2, 2, 2, 2))  # like alexnet conv2: 96 = 64 + 32
C40 = ConvWorkload("c40", 1, 40, 7, 7, 32, 3, 3, (2, 2), (1, 1, 1, 1))  # data blocks of 8, one tile row


def amx_here() -> bool:
    return amx_permission.request() is None


needs_amx = pytest.mark.skipif(not amx_here(), reason="needs a CPU with AMX (amx_int8) and OS permission")


def _compile(func):
    import tvm

    return tvm.compile(tvm.IRModule({"main": func}), target=tvm.target.Target(SPR))


def _run(ex, ins, out):
    """Run ``ex`` on the arrays ``ins`` and the initial output ``out``; returns the output."""
    import tvm

    dev = tvm.cpu()
    args = [tvm.runtime.tensor(a, dev) for a in [*ins, out]]
    ex["main"](*args)
    return args[-1].numpy()


def test_tile_config_bytes():
    words = amx.tile_config([13, 13, 16])
    raw = b"".join(w.to_bytes(8, "little") for w in words)
    assert raw[0] == 1  # palette 1
    assert [int.from_bytes(raw[16 + 2 * t: 18 + 2 * t], "little") for t in range(4)] == [64, 64, 64, 0]
    assert list(raw[48:52]) == [13, 13, 16, 0]
    with pytest.raises(TvmqError, match="8 tiles"):
        amx.tile_config([16] * 9)


def test_amx_layout_round_trips_and_packs_each_weight_tile_contiguous():
    from tvmq.ops import direct as D

    w = np.arange(32 * 128 * 9).reshape(32, 128, 3, 3)
    packed = D.to_layout_weight(w, "amx", 64, 16)
    assert packed.shape == (2, 2, 3, 3, 16, 16, 4)  # [O/16][C/64][Kh][Kw][16 groups][16 out][4], whatever the data block
    assert packed[1, 1, 0, 1, 5, 3, 2] == w[16 + 3, 64 + 5 * 4 + 2, 0, 1] and packed.flags.c_contiguous
    np.testing.assert_array_equal(D.from_layout_weight(packed, "amx", STRIDED, 64, 16), w)
    w96 = np.arange(32 * 96 * 9).reshape(32, 96, 3, 3)  # 96 channels: zero-padded to 128
    padded = D.to_layout_weight(w96, "amx", 64, 16)
    assert padded.shape == (2, 2, 3, 3, 16, 16, 4) and not padded[:, 1, :, :, 8:].any() and padded[:, 1, :, :, :8].all()
    np.testing.assert_array_equal(D.from_layout_weight(padded, "amx", C96, 64, 16), w96)
    bf = D.to_layout_weight(w96, "amx_bf16")  # pairs: 96 channels are three 32-channel tile rows
    assert bf.shape == (2, 3, 3, 3, 16, 16, 2) and bf[0, 2, 1, 1, 7, 4, 1] == w96[4, 64 + 7 * 2 + 1, 1, 1]
    np.testing.assert_array_equal(D.from_layout_weight(bf, "amx_bf16", C96), w96)
    assert (amx.data_block(96), amx.data_block(40), amx.data_block(96, "bf16")) == (32, 8, 32)
    assert amx.shapes(C96)[:2] == ((1, 3, 9, 9, 32), (2, 2, 5, 5, 16, 16, 4))
    assert amx.chunks(6144) == 64 and amx.chunks(13 * 12) == 78 and amx.chunks(13) == 13
    x = np.arange(128 * 2 * 3).reshape(1, 128, 2, 3)
    assert D.to_layout_data(x, "amx", 64).shape == (1, 2, 2, 3, 64)
    np.testing.assert_array_equal(D.from_layout_data(D.to_layout_data(x, "amx", 64), "amx"), x)


def test_check_names_the_problem():
    assert amx.check(SMALL, 8, 1, 2) is None
    assert "c_in" in amx.check(ConvWorkload("c", 1, 16, 8, 8, 32, 3, 3, (1, 1), (1, 1, 1, 1)), 8, 1, 2)
    assert amx.check(C96, 9, 1, 2) is None  # channels are zero-padded to whole tile rows
    assert "out_w" in amx.check(SMALL, 3, 1, 2)
    assert "tiles" in amx.check(SMALL, 8, 2, 4)
    assert "stride 1" in amx.check(STRIDED, 16, 1, 2, flat=True)
    assert amx.check(ODD, 16, 2, 2, flat=True) is None and amx.check(ODD, 16, 2, 2) is not None
    with pytest.raises(TvmqError, match="c_out divisible by 64"):
        amx_int8.conv2d_amx_int8(SMALL, 8, 1, 4)


@pytest.mark.llvm
def test_conv_and_peak_assembly_hold_tile_instructions():
    common = ["ldtilecfg", "tilezero", "tileloadd", "tdpbusd", "tilestored", "tilerelease"]
    int8 = [op for op in common if op != "tilezero"]  # its accumulators start from -x_zp * wsum: a tile load
    for func, ops in ((amx_int8.conv2d_amx_int8(SMALL, 8, 1, 2), int8), (amx.peak_func(4, 2), common)):
        asm = _compile(func).mod.inspect_source("asm")
        assert [op for op in ops if op not in asm] == []


@pytest.mark.llvm
def test_permission_answer_is_one_line():
    why = amx_permission.request()
    assert why is None or ("\n" not in why and why)
    assert amx_permission.request() == why  # asked once per process


@pytest.mark.llvm
@needs_amx
@pytest.mark.parametrize("wl,rows,m_tiles,n_tiles,flat", [
    (SMALL, 8, 1, 2, False), (SMALL, 4, 2, 1, False), (STRIDED, 8, 1, 4, False), (STRIDED, 4, 2, 2, False),
    (SMALL, 16, 2, 2, True), (ODD, 16, 1, 4, True), (ODD, 13, 1, 1, False), (C96, 9, 1, 2, False),
    (C96, 16, 1, 2, True), (C40, 4, 1, 1, False)])
def test_conv_is_exact(wl, rows, m_tiles, n_tiles, flat):
    ex = _compile(amx_int8.conv2d_amx_int8(wl, rows, m_tiles, n_tiles, flat=flat))
    ins = amx_int8.make_inputs(wl, np.random.default_rng(1))
    ref = amx_int8.reference(wl, ins)
    assert np.abs(ref.astype(int)).max() > 0
    np.testing.assert_array_equal(_run(ex, ins, np.zeros(amx.shapes(wl)[2], "int8")), ref)


@pytest.mark.llvm
def test_bf16_peak_assembly_holds_tdpbf16ps():
    asm = _compile(amx.peak_func(4, 2, "bf16")).mod.inspect_source("asm")
    assert "tdpbf16ps" in asm and "tdpbusd" not in asm
    with pytest.raises(TvmqError, match="unknown AMX peak kind"):
        amx.peak_func(4, 2, "fp8")


@pytest.mark.llvm
@needs_amx
@pytest.mark.parametrize("kind,word,k", [("int8", 0x01010101, 64), ("bf16", 0x3F803F80, 32)])
def test_peak_kernel_runs_and_accumulates(kind, word, k):
    src = np.full((2, 4, 16, 16), word, "int32")  # every element 1 (u8/s8 bytes, or bf16 1.0)
    acc = _run(_compile(amx.peak_func(3, 2, kind)), [src], np.zeros(src.shape, amx.DOT[kind][1]))
    assert (acc == 3 * k).all()  # 3 rounds of a K-long dot product of ones


def _space(features):
    from tvmq.space import Space

    return Space.load(SMALL, "int8", features=features)


def test_amx_dot_values_only_where_the_target_has_amx_int8():
    dots = lambda sp: dict((k.name, k.values) for k in sp.knobs)["dot"]  # noqa: E731
    assert "amx_1x2" in dots(_space({"avx512vnni", "amx-tile", "amx-int8"}))
    assert not [d for d in dots(_space({"avx512vnni", "avx512bw"})) if d.startswith("amx")]
    from tvmq.space import Space

    assert "dot" not in [k.name for k in Space.load(SMALL, "float", features={"amx-int8"}).knobs]


def test_amx_configs_fix_the_loop_knobs_and_respect_the_shape():
    sp = _space({"avx512vnni", "amx-int8"})
    knobs = dict((k.name, k.values) for k in sp.knobs)
    cfgs = [sp.canonical(dict(sp.default, dot=d, tile_ow=t, parallel_depth=3, ib=16))
            for d in knobs["dot"] if d.startswith("amx") for t in knobs["tile_ow"]]
    assert all(c["parallel_depth"] == 1 and c["ib"] == 4 for c in cfgs)  # implied: the kernel has no loop knobs
    valid = [(c["dot"], c["tile_ow"]) for c in cfgs if sp.is_valid(c)]
    assert ("amx_1x2", 8) in valid and ("amx_2x2", 4) in valid
    assert ("amx_1x4", 8) not in valid  # c_out 32 is not a multiple of 4 x 16
    assert ("amx_2x2", 8) not in valid  # 2 tiles of 8 rows do not divide out_w 8
    flat = sp.canonical(dict(sp.default, dot="amxf_2x2", tile_ow=4))
    assert flat["tile_ow"] == 1 and sp.is_valid(flat)  # 16-row tiles on the flat grid: tile_ow plays no part


def test_flat_amx_on_a_strided_layer_is_an_invalid_config():
    from tvmq.space import Space
    from tvmq.templates import InvalidConfig, instantiate

    sp = Space.load(STRIDED, "int8", features={"avx512vnni", "amx-int8"})
    with pytest.raises(InvalidConfig, match="stride 1"):
        instantiate(sp, "int8", STRIDED, {}, sp.canonical(dict(sp.default, dot="amxf_1x2")))


@pytest.mark.llvm
@pytest.mark.parametrize("dot", ["amx_1x2", "amxf_2x2"])
def test_amx_knob_through_the_template_uses_tdpbusd_and_is_exact_where_amx_runs(dot):
    from tvmq.build.lower import compile_mod
    from tvmq.templates import instantiate

    sp = _space({"avx512vnni", "amx-int8"})
    cfg = sp.canonical(dict(sp.default, dot=dot, tile_ow=8))
    op, sch = instantiate(sp, "int8", SMALL, {}, cfg)
    ex = compile_mod(sch.mod, SPR)
    assert count_instructions(asm(ex), "x86_64")["tdpbusd"] > 0  # the key-instruction column shows AMX
    if not amx_here():
        pytest.skip("needs a CPU with AMX (amx_int8) and OS permission")
    ins = op.make_inputs(np.random.default_rng(2))
    assert op.check(_run(ex, ins, np.zeros(op.out_arg.shape, "int8")), ins) == (True, 0.0)


@pytest.mark.llvm
@pytest.mark.parametrize("wl,rows,m_tiles,n_tiles,flat", [(SMALL, 8, 1, 2, False), (ODD, 16, 2, 2, True),
                                                          (STRIDED, 4, 2, 2, False), (C40, 4, 1, 1, False)])
def test_bf16_conv_uses_tdpbf16ps_and_matches_numpy_where_amx_runs(wl, rows, m_tiles, n_tiles, flat):
    from tvmq.templates import amx_bf16

    ex = _compile(amx_bf16.conv2d_amx_bf16(wl, rows, m_tiles, n_tiles, flat))
    assert "tdpbf16ps" in ex.mod.inspect_source("asm")
    if not amx_here():
        pytest.skip("needs a CPU with AMX (amx_int8) and OS permission")
    ins = amx_bf16.make_inputs(wl, np.random.default_rng(3))
    out = _run(ex, ins, np.full(amx.shapes(wl, "bf16")[2], np.nan, "float32"))
    ref = amx_bf16.reference(wl, ins)
    # float32 accumulation of exact bf16 products: a wrong tile is off by whole terms (order 1)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-4 * np.sqrt(wl.c_in * wl.kh * wl.kw) * 10)


def test_bf16_bits_round_to_nearest_even():
    from tvmq.templates import amx_bf16

    x = np.array([1.0, -2.5, 1.0 + 2.0**-8, 1.0 + 3 * 2.0**-8, 3.0e38], np.float32)
    back = amx_bf16.from_bf16_bits(amx_bf16.to_bf16_bits(x))
    assert back.tolist() == [1.0, -2.5, 1.0, 1.0 + 2.0**-6, float(np.float32(back[-1]))]
    assert np.isfinite(back[-1]) and abs(back[-1] - 3.0e38) / 3.0e38 < 2.0**-8


@pytest.mark.llvm
@needs_amx
def test_measurement_worker_holds_amx_permission(tmp_path):
    from tvmq.run.base import BuildResult
    from tvmq.run.fixed import FixedVerifier
    from tvmq.run.local import LocalRunner
    from tvmq.run.settings import MeasureSettings

    lib = str(tmp_path / "amx.so")
    _compile(amx_int8.conv2d_amx_int8(SMALL, 8, 1, 2)).export_library(lib)
    ins = amx_int8.make_inputs(SMALL, np.random.default_rng(4))
    runner = LocalRunner()
    try:
        (res,) = runner.run([BuildResult({}, "ok", lib)], FixedVerifier(ins, amx_int8.reference(SMALL, ins)),
                            MeasureSettings(repeat=2, min_repeat_ms=1, timeout_s=30, threads=2))
    finally:
        runner.close()
    assert res.status == "ok" and res.times and res.max_abs_err == 0.0, res.error
    wrong = FixedVerifier(ins, amx_int8.reference(SMALL, ins) ^ 1)  # the same kernel against a wrong answer
    assert wrong.check({}, amx_int8.reference(SMALL, ins))[0] is False


@pytest.mark.llvm
@needs_amx
def test_without_permission_a_tile_instruction_kills_only_its_process(tmp_path):
    import subprocess
    import sys

    lib = str(tmp_path / "peak.so")
    _compile(amx.peak_func(2, 1)).export_library(lib)
    code = ("import numpy as np, tvm; m = tvm.runtime.load_module(%r); d = tvm.cpu(); "
            "z = np.zeros((1, 4, 16, 16), 'int32'); "
            "m['main'](tvm.runtime.tensor(z, d), tvm.runtime.tensor(z, d))" % lib)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert proc.returncode == -4  # SIGILL: Linux had not granted this process AMX tile state


@pytest.mark.llvm
@pytest.mark.parametrize("bias,relu,residual", [(False, False, False), (True, True, False), (True, 6.0, False),
                                               (True, True, True), (False, False, True)])
def test_amx_dequant_epilogue_with_bias_and_relu_matches_numpy_where_amx_runs(bias, relu, residual):
    """The export's int8 kernel: float output, bias, a residual add and ReLU (or ReLU6) fused into the AMX kernel."""
    from tvmq.build.lower import compile_mod
    from tvmq.ops import make_op

    op = make_op("int8", ODD, layout="amx", tiles=(13, 1, 2, 0), epilogue="dequant", bias=bias, relu=relu,
                 **({"residual": True} if residual else {}))
    assert [a.name for a in op.args] == ["data", "weight", "x_zp", "wsum", "scale", *(["bias"] if bias else []),
                                         *(["residual"] if residual else []), "dequant"]
    assert op.out_arg.dtype == "float32" and (not residual or op.args[-2].shape == op.out_arg.shape)
    ex = compile_mod(op.irmodule(), SPR)
    assert count_instructions(asm(ex), "x86_64")["tdpbusd"] > 0
    if not amx_here():
        pytest.skip("needs a CPU with AMX (amx_int8) and OS permission")
    ins = op.make_inputs(np.random.default_rng(4))
    out = _run(ex, ins, np.full(op.out_arg.shape, np.nan, "float32"))
    ok, err = op.check(out, ins)
    assert ok, err
    if relu:
        assert out.min() >= 0 and (relu is True or out.max() <= relu)
