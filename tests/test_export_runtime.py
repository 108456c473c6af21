"""Loading an export: AMX kernels get the OS's tile permission first, or a one-line error."""

import pytest

from tvmq.errors import TvmqError
from tvmq.export import runtime as RT
from tvmq.run import amx_permission


def test_uses_amx_reads_the_manifests_operators():
    assert RT.uses_amx({"functions": [{"op": "conv2d_nchwc_int8"}, {"op": "conv2d_amx_int8"}]})
    assert not RT.uses_amx({"functions": [{"op": "conv2d_nchwc_int8"}, {"op": "conv2d_nchwc_float"}]})
    assert not RT.uses_amx({})


def test_an_export_with_amx_kernels_where_linux_refuses_tile_state_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(amx_permission, "_answer", "this CPU has no AMX (no amx_int8 in /proc/cpuinfo)")
    monkeypatch.setattr(RT.M, "read", lambda d: {"functions": [{"op": "conv2d_amx_int8"}],
                                                  "files": {"lib": {"path": "lib.so"}}})
    monkeypatch.setattr(RT.M, "check_versions", lambda man: [])
    monkeypatch.setattr(RT.M, "check_target", lambda *a, **k: None)
    monkeypatch.setattr(RT.M, "check_files", lambda *a, **k: None)
    with pytest.raises(TvmqError, match="cannot run AMX kernels here: this CPU has no AMX"):
        RT.open_export(tmp_path)


@pytest.mark.llvm
def test_model_runner_reuses_its_input_tensor_and_each_call_sees_its_own_input(tmp_path):
    """``ModelRunner.run`` copies each input into one device tensor (locally through a numpy view of it),
    and returns a copy of the output: a second call with another input
    (also a float64 array) gives that input's output, equal to onnxruntime's, not the first's."""
    import numpy as np
    import onnxruntime as ort
    from pathlib import Path

    from tvmq.cli import main

    model = Path(RT.__file__).resolve().parents[1] / "data" / "digits_cnn.onnx"
    assert main(["export", "--model", str(model), "--quantize", "none", "--out", str(tmp_path / "e")]) == 0
    mr = RT.ModelRunner(RT.open_export(tmp_path / "e"))
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    xs = [np.random.default_rng(s).uniform(0, 1, mr.input_shape) for s in (1, 2)]
    ys = [mr.run(x) for x in xs]
    assert mr._xv is not None and not np.allclose(ys[0], ys[1])  # local: the numpy view of the input tensor
    for x, y in zip(xs, ys):
        np.testing.assert_allclose(y, sess.run(None, {name: x.astype(np.float32)})[0], rtol=1e-4, atol=1e-5)
