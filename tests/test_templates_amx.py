"""Intel AMX: tile configuration, the int8 convolution's assembly (compiles anywhere), and its exact
result against numpy (only on a CPU with AMX whose OS grants tile state)."""

import numpy as np
import pytest

from tvmq.errors import TvmqError
from tvmq.run import amx_permission
from tvmq.templates import amx
from tvmq.workload import ConvWorkload

SPR = {"kind": "llvm", "mcpu": "sapphirerapids", "num-cores": 2}
SMALL = ConvWorkload("small", 1, 64, 8, 8, 32, 3, 3, (1, 1), (1, 1, 1, 1))
STRIDED = ConvWorkload("strided", 1, 128, 17, 17, 64, 3, 3, (2, 2), (1, 0, 1, 0))


def amx_here() -> bool:
    return amx_permission.request() is None


needs_amx = pytest.mark.skipif(not amx_here(), reason="needs a CPU with AMX (amx_int8) and OS permission")


def _compile(func):
    import tvm

    return tvm.compile(tvm.IRModule({"main": func}), target=tvm.target.Target(SPR))


def test_tile_config_bytes():
    words = amx.tile_config([13, 13, 16])
    raw = b"".join(w.to_bytes(8, "little") for w in words)
    assert raw[0] == 1  # palette 1
    assert [int.from_bytes(raw[16 + 2 * t: 18 + 2 * t], "little") for t in range(4)] == [64, 64, 64, 0]
    assert list(raw[48:52]) == [13, 13, 16, 0]
    with pytest.raises(TvmqError, match="8 tiles"):
        amx.tile_config([16] * 9)


def test_check_names_the_problem():
    assert amx.check(SMALL, 8, 1, 2) is None
    assert "c_in" in amx.check(ConvWorkload("c", 1, 32, 8, 8, 32, 3, 3, (1, 1), (1, 1, 1, 1)), 8, 1, 2)
    assert "out_w" in amx.check(SMALL, 3, 1, 2)
    assert "tiles" in amx.check(SMALL, 8, 2, 4)
    with pytest.raises(TvmqError, match="c_out divisible by 64"):
        amx.conv2d_amx_int8(SMALL, 8, 1, 4)


@pytest.mark.llvm
def test_conv_and_peak_assembly_hold_tile_instructions():
    common = ["ldtilecfg", "tilezero", "tileloadd", "tdpbusd", "tilestored", "tilerelease"]
    for func, ops in ((amx.conv2d_amx_int8(SMALL, 8, 1, 2), common), (amx.peak_func(4, 2), common)):
        asm = _compile(func).mod.inspect_source("asm")
        assert [op for op in ops if op not in asm] == []


@pytest.mark.llvm
def test_permission_answer_is_one_line():
    why = amx_permission.request()
    assert why is None or ("\n" not in why and why)
    assert amx_permission.request() == why  # asked once per process


@pytest.mark.llvm
@needs_amx
@pytest.mark.parametrize("wl,rows,m_tiles,n_tiles", [(SMALL, 8, 1, 2), (SMALL, 4, 2, 1), (STRIDED, 8, 1, 4),
                                                     (STRIDED, 4, 2, 2)])
def test_conv_is_exact(wl, rows, m_tiles, n_tiles):
    import tvm

    ex = _compile(amx.conv2d_amx_int8(wl, rows, m_tiles, n_tiles))
    ins = amx.make_inputs(wl, np.random.default_rng(1))
    dev = tvm.cpu()
    args = [tvm.runtime.tensor(a, dev) for a in ins] + [tvm.runtime.tensor(np.zeros(amx.shapes(wl)[2], "int8"), dev)]
    ex["main"](*args)
    ref = amx.reference(wl, ins)
    assert np.abs(ref.astype(int)).max() > 0
    np.testing.assert_array_equal(args[-1].numpy(), ref)


@pytest.mark.llvm
@needs_amx
def test_peak_kernel_runs_and_accumulates():
    import tvm

    src = np.full((2, 4, 16, 16), 0x01010101, "int32")  # every byte 1: u8 A tiles, s8 B tiles
    acc = tvm.runtime.tensor(np.zeros_like(src), tvm.cpu())
    _compile(amx.peak_func(3, 2))["main"](tvm.runtime.tensor(src, tvm.cpu()), acc)
    assert (acc.numpy() == 3 * 64).all()  # 3 rounds of a 64-long dot product of ones
