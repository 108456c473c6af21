"""export/glue.py: the glue between kernels is scheduled so that it vectorizes (llvm tier)."""

import numpy as np
import pytest

pytestmark = pytest.mark.llvm


def _quantize_module(shape):
    from tvm import relax
    from tvmq.export.requant import quantize

    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(list(shape), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            o = bb.emit_output(quantize(bb, x, 0.05, 128.0))
        bb.emit_func_output(o)
    return bb.get()


def test_a_quantize_pass_vectorizes_its_innermost_loop_with_round():
    # Relax's round legalizes to nearbyint, which TVM's vectorizer leaves scalar; and a vector fused across
    # loops reads through divisions: both made the quantize of a blocked tensor 10x slower (Zen 5)
    import tvm
    from tvm.relax.backend.cpu_generic import pipeline as cpu
    from tvmq.export.glue import schedule_glue
    from tvmq.targets import get_target

    target = get_target("host").tvm_target()
    with target:
        mod = tvm.transform.Sequential(cpu.library_dispatch_passes(target) + cpu.legalize_passes(target))(
            _quantize_module((1, 36, 14, 14, 16)))
    mod, done, left = schedule_glue(mod)
    assert (done, left) == (1, 0)
    text = [f.script() for _, f in mod.functions_items() if isinstance(f, tvm.tirx.PrimFunc)][0]
    assert "nearbyint" not in text and "T.round" in text
    assert "T.vectorized(T.int64(16))" in text and "T.parallel" in text


def test_the_scheduled_quantize_rounds_half_to_even_like_numpy():
    import tvm
    from tvm import relax
    from tvmq.export.glue import compile_model
    from tvmq.targets import get_target

    ex, _ = compile_model(_quantize_module((1, 36, 14, 14, 16)), get_target("host").tvm_target())
    x = np.random.default_rng(0).uniform(-8, 8, (1, 36, 14, 14, 16)).astype(np.float32)
    x.flat[:6] = [0.025, 0.075, -0.025, 0.125, 6.4, -6.45]  # halves of the 0.05 step, and the clip
    y = relax.VirtualMachine(ex, tvm.cpu())["main"](tvm.runtime.tensor(x)).numpy()
    want = np.clip(np.round(x * np.float32(1 / 0.05)) + 128, 0, 255).astype(np.uint8)
    assert np.array_equal(y, want)
