"""tvmq's lowering (tvmq/build/lower.py): 16-lane codebook lookups become register permutes on
AVX-512 targets, every placement of the decode stays exact, other codebook sizes and targets keep
the gather (llvm tier)."""

import numpy as np
import pytest

from tvmq.build.cross import asm, count_instructions
from tvmq.build.lower import PIPELINE, compile_mod, pipeline_for
from tvmq.targets import cpu_has, get_target
from tvmq.task import Task
from tvmq.templates import instantiate
from tvmq.workload import ConvWorkload

pytestmark = pytest.mark.llvm
WL = ConvWorkload("t", 1, 32, 6, 7, 64, 3, 3, (1, 1), (1, 1, 1, 1))
SERVER = get_target("server")  # skylake-avx512: compiles anywhere, runs on any AVX-512 CPU


def _kernel(cfg_over, bits=5, target=SERVER):
    task = Task.make(WL, "codebook", target, bits=bits)
    space = task.space()
    cfg = dict(space.default, **cfg_over)
    assert space.is_valid(cfg), space.violation(cfg)
    op, sch = instantiate(space, task.op_name, WL, task.params, cfg)
    ex = compile_mod(sch.mod, target.tvm_target())
    return op, ex, count_instructions(asm(ex), target.arch)


def _run(op, ex):
    import tvm

    ins = op.make_inputs(np.random.default_rng(1))
    dev = tvm.cpu()
    args = [tvm.runtime.tensor(a, dev) for a in ins] + [
        tvm.runtime.tensor(np.zeros(op.out_arg.shape, op.out_arg.dtype), dev)]
    ex.jit()["main"](*args)
    return op.check(args[-1].numpy(), ins)


def test_pipeline_only_for_avx512():
    assert pipeline_for(SERVER.tvm_target()) == PIPELINE
    assert pipeline_for(get_target("edge").tvm_target()) == "default"


CASES = [(d, bits, ob) for d in ("inline", "ico", "oo", "root") for bits, ob in ((5, 16), (5, 32), (4, 16))]


@pytest.mark.parametrize("decode_at,bits,ob", CASES)
def test_lookups_become_permutes_and_stay_exact(decode_at, bits, ob):
    op, ex, c = _kernel(dict(decode_at=decode_at, ob=ob), bits=bits)
    assert c["vperm"] > 0 and c["vinsertps"] == 0, c
    if cpu_has("avx512f"):
        ok, err = _run(op, ex)
        assert ok, err


def test_other_codebook_sizes_keep_the_gather_and_stay_exact():
    op, ex, c = _kernel(dict(decode_at="ico", ob=16), bits=3)  # 8 entries: no one-register permute
    assert c["vperm"] == 0 and c["vinsertps"] > 0, c
    if cpu_has("avx512f"):
        ok, err = _run(op, ex)
        assert ok, err


def test_float_kernels_are_untouched():
    task = Task.make(WL, "float", SERVER)
    _, sch = instantiate(task.space(), "float", WL, {}, task.space().default)
    c = count_instructions(asm(compile_mod(sch.mod, SERVER.tvm_target())), "x86_64")
    assert c["vperm"] == 0 and c["vfmadd_ps"] > 0, c


def test_int8_tables_become_vpermb_with_vbmi():
    """The integer codebook (codebook_int8, 4-bit planar indices into a 64-byte int8 table): one
    vpermb per 64 decoded weights on host (znver4 has AVX-512 VBMI), VNNI in the inner loop, exact;
    skylake-avx512 has no VBMI and keeps the gather."""
    host = get_target("host")
    task = Task.make(WL, "codebook_int8", host)
    space = task.space()
    for dec in ("ico", "oo", "root"):
        cfg = dict(space.default, decode_at=dec)
        op, sch = instantiate(space, task.op_name, WL, task.params, cfg)
        ex = compile_mod(sch.mod, host.tvm_target())
        text = asm(ex)
        if "avx512vbmi" in host.features():
            assert "vpermb" in text and "vpinsrb" not in text, dec
        if "avx512vnni" in host.features():
            assert count_instructions(text, "x86_64")["vpdpbusd"] > 0
        ok, err = _run(op, ex)
        assert ok and err == 0.0, (dec, err)
    server = Task.make(WL, "codebook_int8", SERVER)
    _, sch = instantiate(server.space(), server.op_name, WL, server.params, server.space().default)
    assert "vpermb" not in asm(compile_mod(sch.mod, SERVER.tvm_target()))
