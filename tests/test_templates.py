"""Templates: random configs of every variant build and match numpy; VNNI emits vpdpbusd (llvm tier)."""

import numpy as np
import pytest

from tvmq.errors import TvmqError
from tvmq.targets import cpu_has, get_target
from tvmq.task import Task
from tvmq.templates import InvalidConfig, instantiate
from tvmq.workload import ConvWorkload

pytestmark = pytest.mark.llvm
WL = ConvWorkload("t", 1, 8, 9, 10, 32, 3, 3, (1, 1), (1, 1, 1, 1))
HOST = get_target("host")


WL32 = ConvWorkload("t32", 1, 32, 9, 10, 32, 3, 3, (1, 1), (1, 1, 1, 1))


def build_and_check(task, cfg):
    op, sch = instantiate(task.space(), task.op_name, task.workload, task.params, cfg)
    return build_and_check_op(op, sch, task)


def build_and_check_op(op, sch, task):
    """((ok, max error), executable) of the scheduled ``op`` built for the task's target and run."""
    import tvm

    from tvmq.build.lower import compile_mod

    ex = compile_mod(sch.mod, task.target.tvm_target())
    mod = ex.jit()
    ins = op.make_inputs(np.random.default_rng(0))
    dev = tvm.cpu()
    args = [tvm.runtime.tensor(a, dev) for a in ins] + [
        tvm.runtime.tensor(np.zeros(op.out_arg.shape, op.out_arg.dtype), dev)]
    mod["main"](*args)
    return op.check(args[-1].numpy(), ins), ex


@pytest.mark.parametrize("variant", ["float", "codebook", "codebook4", "codebook_int8", "int8", "int8w7", "int4",
                                     "im2col", "im2col_int8",
                                     "im2col_codebook"])
def test_random_configs_are_correct(variant):
    task = Task.make(WL, variant, HOST)
    space = task.space()
    rng = np.random.default_rng(7)
    cfgs = [space.default] + [space.sample(rng) for _ in range(3)]
    for cfg in cfgs:
        try:
            (ok, err), _ = build_and_check(task, cfg)
        except InvalidConfig:
            continue  # rejected before building: allowed, never timed
        assert ok, (cfg, err)


def test_invalid_config_is_rejected_before_building():
    task = Task.make(WL, "float", HOST)
    with pytest.raises(InvalidConfig, match="not one of"):
        instantiate(task.space(), "float", WL, {}, dict(task.space().default, ob=48))
    assert issubclass(InvalidConfig, TvmqError)


def test_vnni_only_where_the_target_has_it():
    assert "vnni" not in dict((k.name, k.values) for k in Task.make(WL, "int8", get_target("server")).space().knobs)[
        "dot"]


def test_int8w7_pmaddubsw_is_exact_and_uses_it():
    """On skylake-avx512 (no VNNI) the 7-bit-weight kernel is vpmaddubsw + vpmaddwd, exact even at
    the extremes (activations 255, weights -64 or 63: pair sums at the int16 limit)."""
    import tvm

    from tvmq.build.cross import asm, count_instructions
    from tvmq.build.lower import compile_mod

    task = Task.make(WL, "int8w7", get_target("server"), epilogue="int32")  # raw sums: nothing clamps
    space = task.space()
    assert space.default["dot"] == "pmaddubsw"
    for acc in ("local", "global"):
        cfg = dict(space.default, accumulate=acc)
        op, sch = instantiate(space, task.op_name, WL, task.params, cfg)
        ex = compile_mod(sch.mod, task.target.tvm_target())
        c = count_instructions(asm(ex), "x86_64")
        assert c["vpmaddubsw"] > 0 and c["vpmaddwd"] > 0, c
        if not cpu_has("avx512bw"):
            continue
        ins = op.make_inputs(np.random.default_rng(0))
        ins[0][...] = 255
        ins[1][...] = np.where(np.random.default_rng(1).random(ins[1].shape) < 0.5, -64, 63)
        dev = tvm.cpu()
        args = [tvm.runtime.tensor(a, dev) for a in ins] + [
            tvm.runtime.tensor(np.zeros(op.out_arg.shape, op.out_arg.dtype), dev)]
        ex.jit()["main"](*args)
        ok, err = op.check(args[-1].numpy(), ins)
        assert ok and err == 0.0


@pytest.mark.skipif(not cpu_has("avx512_vnni"), reason="this CPU has no AVX-512 VNNI to run vpdpbusd")
def test_int8_vnni_is_exact_and_uses_vpdpbusd():
    from tvmq.build.cross import asm, count_instructions

    task = Task.make(WL, "int8", HOST)
    space = task.space()
    assert space.default["dot"] in ("vnni", "amx_1x4", "amx_1x2")  # AMX first where the CPU has it
    for acc in ("local", "global"):
        (ok, err), ex = build_and_check(task, space.canonical(dict(space.default, dot="vnni", accumulate=acc)))
        assert ok and err == 0.0
        assert count_instructions(asm(ex), "x86_64")["vpdpbusd"] > 0


@pytest.mark.parametrize("variant,cfg,xb", [("float", dict(ib=16), 8), ("float", dict(ib=16), 32),
                                            ("float", dict(ib=4), 16), ("codebook4", dict(ib=8), 16)])
def test_a_kernel_reads_another_data_block_with_its_tuned_reduction(variant, cfg, xb):
    """``data_block``: the data in NCHW{xb}c (the block a model's previous kernel wrote), the reduction
    still blocked by the config's ``ib``; checked against numpy."""
    task = Task.make(WL32, variant, HOST)
    space = task.space()
    op, sch = instantiate(space, task.op_name, WL32, {**task.params, "data_block": xb},
                          space.canonical(dict(space.default, **cfg)))
    assert op.args[0].shape[-1] == xb and op.params["ib"] == cfg["ib"]
    (ok, err), _ = build_and_check_op(op, sch, task)
    assert ok, err


@pytest.mark.skipif(not cpu_has("avx512_vnni"), reason="this CPU has no AVX-512 VNNI to run vpdpbusd")
@pytest.mark.parametrize("xb", [8, 16, 32])
def test_vnni_reads_wider_data_blocks_exactly(xb):
    """VNNI reduces 4 input channels at a time; it reads them as 4 bytes of a wider block as well."""
    from tvmq.build.cross import asm, count_instructions

    task = Task.make(WL32, "int8", HOST)
    space = task.space()
    op, sch = instantiate(space, task.op_name, WL32, {**task.params, "data_block": xb},
                          space.canonical(dict(space.default, dot="vnni")))
    (ok, err), ex = build_and_check_op(op, sch, task)
    assert ok and err == 0.0
    assert count_instructions(asm(ex), "x86_64")["vpdpbusd"] > 0

