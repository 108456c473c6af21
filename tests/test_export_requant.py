"""uint8 activations between kernels: the Relax quantize and the kernels' ``quant_out`` epilogue agree."""

import numpy as np
import pytest

from tvmq.export.requant import dequantize, out_q_array, quantize
from tvmq.ops.integer import quantize_reference


def test_out_q_array_holds_the_quantize_constants():
    q = out_q_array(0.1, 128)
    assert q.dtype == np.float32 and q[0] == np.float32(1.0 / 0.1) and q[1] == 128.0


@pytest.mark.llvm
def test_relax_quantize_matches_the_epilogues_numpy_twin_and_dequantize_inverts_it():
    """Ties (x.5 steps), both clips and ordinary values: the pass that the export removes and the
    epilogue that replaces it give the same bytes."""
    import tvm
    from tvm import relax

    scale, zp = 0.05, 100.0
    x = (np.array([-10.0, -5.0, -0.025, 0.0, 0.025, 0.075, 1.0, 6.375, 7.775, 50.0], np.float32)
         .reshape(1, 10, 1, 1))
    bb = relax.BlockBuilder()
    v = relax.Var("x", relax.TensorType(list(x.shape), "float32"))
    with bb.function("main", [v]):
        with bb.dataflow():
            q = quantize(bb, v, scale, zp)
            d = dequantize(bb, q, scale, zp)
            out = bb.emit_output(relax.Tuple([q, d]))
        bb.emit_func_output(out)
    ex = tvm.compile(bb.get(), target="llvm")
    vm = relax.VirtualMachine(ex, tvm.cpu())
    got_q, got_d = (t.numpy() for t in vm["main"](tvm.runtime.tensor(x)))
    want = quantize_reference(x, out_q_array(scale, zp))
    assert got_q.dtype == np.uint8 and np.array_equal(got_q, want)
    assert got_q.min() == 0 and got_q.max() == 255  # both clips taken
    np.testing.assert_allclose(got_d, (want.astype(np.float32) - zp) * scale, rtol=1e-6)
