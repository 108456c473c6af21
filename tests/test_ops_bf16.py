"""The bf16 variant: widened-FMA and AMX-BF16 kernels through the template, each checked against numpy;
its error against float."""

import numpy as np
import pytest

from tvmq.build.cross import asm, count_instructions
from tvmq.ops import bf16, make_op
from tvmq.run import amx_permission
from tvmq.space import Space
from tvmq.workload import ConvWorkload

SPR = {"kind": "llvm", "mcpu": "sapphirerapids", "num-cores": 2}
SMALL = ConvWorkload("small", 1, 64, 8, 8, 32, 3, 3, (1, 1), (1, 1, 1, 1))
ASYM = ConvWorkload("asym", 1, 8, 9, 7, 16, 3, 2, (2, 1), (1, 0, 2, 1))


def _run(ex, op):
    import tvm

    ins = op.make_inputs(np.random.default_rng(5))
    dev = tvm.cpu()
    args = [tvm.runtime.tensor(a, dev) for a in [*ins, np.full(op.out_arg.shape, np.nan, "float32")]]
    ex["main"](*args)
    return op.check(args[-1].numpy(), ins)


@pytest.mark.llvm
@pytest.mark.parametrize("wl,layout", [(SMALL, "nchwc"), (ASYM, "nchw"), (ASYM, "nhwc")])
def test_widened_bf16_matches_numpy(wl, layout):
    from tvmq.build.lower import compile_mod
    from tvmq.templates import instantiate

    sp = Space.load(wl, "bf16", features=set())
    assert sp.default["dot"] == "none" and set(dict((k.name, k.values) for k in sp.knobs)["dot"]) == {"none"}
    cfg = sp.canonical(dict(sp.default, layout=layout, ib=8, ob=16, tile_ow=1, vector="oi"))
    op, sch = instantiate(sp, "bf16", wl, {}, cfg)
    assert op.args[0].dtype == "uint16" and op.out_arg.dtype == "float32"
    ok, err = _run(compile_mod(sch.mod, {"kind": "llvm"}), op)
    assert ok, err


@pytest.mark.llvm
def test_amx_bf16_through_the_template_uses_tdpbf16ps_and_matches_numpy_where_amx_runs():
    from tvmq.build.lower import compile_mod
    from tvmq.templates import instantiate

    sp = Space.load(SMALL, "bf16", features={"amx-int8", "amx-bf16", "amx-tile"})
    assert "amx_1x2" in dict((k.name, k.values) for k in sp.knobs)["dot"]
    op, sch = instantiate(sp, "bf16", SMALL, {}, sp.canonical(dict(sp.default, dot="amx_1x2", tile_ow=8)))
    ex = compile_mod(sch.mod, SPR)
    counts = count_instructions(asm(ex), "x86_64")
    assert counts["tdpbf16ps"] > 0 and counts.get("tdpbusd", 0) == 0
    if amx_permission.request() is not None:
        pytest.skip("needs a CPU with AMX (amx_bf16) and OS permission")
    ok, err = _run(ex, op)
    assert ok, err


def test_bf16_has_no_int8_dot_values():
    values = dict((k.name, k.values) for k in Space.load(SMALL, "bf16").knobs)["dot"]
    assert "vnni" not in values and "pmaddubsw" not in values


def test_bf16_reference_is_the_rounded_inputs_convolution():
    op = make_op("bf16", ASYM, layout="nchw", ib=1, ob=1)
    ins = op.make_inputs(np.random.default_rng(0))
    assert ins[0].dtype == np.uint16 and ins[1].dtype == np.uint16
    wrong = op.reference(ins) + 1e-2
    assert not op.check(wrong.astype("float32"), ins)[0]


def test_error_vs_float_is_bf16_rounding():
    e = bf16.error_vs_float(SMALL)
    assert 1e-4 < e["max_rel_err"] < 2e-2 and e["mean_rel_err"] < e["max_rel_err"]
