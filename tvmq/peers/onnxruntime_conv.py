"""onnxruntime as a peer: one-node ONNX models (fp32 ``Conv``, u8 x s8 ``QLinearConv``) of a workload.

Each model is built with ``onnx.helper`` (opset 17, ``ir_version`` 9: what this onnxruntime loads),
run with ``intra_op_num_threads=threads``, ``inter_op_num_threads=1`` and sequential execution, and
checked against tvmq's numpy reference (``tvmq.ops.reference.conv2d_nchw``) before its time counts.
``QLinearConv`` is compared, not ``ConvInteger`` (10-20x slower in onnxruntime).
On an x86 CPU without an int8 dot product (no AVX-512 VNNI, AVX-VNNI or AMX), onnxruntime's u8 x s8
kernels use ``vpmaddubsw``, whose int16 pair sums saturate on full-range weights; there its
``QLinearConv`` gets 7-bit weights, as onnxruntime advises (``reduce_range``), see ``u8s8_saturates``.

Timing: ``repeat`` samples, each the mean of as many runs as fill ``min_repeat_ms`` (at least
``number``); the median and the spread of the samples are reported. ``run_isolated`` measures in a
child process: after a TVM kernel has run, TVM's worker threads spin-wait in the parent for a
while, and a 2-thread onnxruntime session there shares the cores with them (measured here: 2-thread
Conv at 24-68% of peak in-process, against 80-90% at 1 thread).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from ..errors import TvmqError, one_line
from ..ops.float import float_tolerance
from ..ops.reference import conv2d_nchw
from .base import PeerResult, conv_inputs, time_callable
from .child import arg_parser, run_child, workload_of

# /proc/cpuinfo flags of an x86 int8 dot product that onnxruntime's u8 x s8 kernels use instead of
# vpmaddubsw (int16 pair sums that saturate on full-range weights)
INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
OPSET = 17
IR_VERSION = 9
KINDS = ("conv", "qlinearconv")


def _attrs(wl):
    return dict(kernel_shape=[wl.kh, wl.kw], strides=list(wl.stride), pads=list(wl.pad), dilations=[1, 1],
                group=1)


def _model(graph):
    from onnx import helper  # lazy: heavy (onnx)

    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="tvmq")
    m.ir_version = IR_VERSION
    return m


def conv_model(wl, w: np.ndarray):
    """fp32 ``Conv`` (no bias) with the weights as an initializer; input ``x``, output ``y``."""
    from onnx import TensorProto, helper, numpy_helper  # lazy: heavy (onnx)

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [wl.n, wl.c_in, wl.h, wl.w])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [wl.n, wl.c_out, wl.out_h, wl.out_w])
    node = helper.make_node("Conv", ["x", "w"], ["y"], **_attrs(wl))
    g = helper.make_graph([node], "tvmq_conv", [x], [y], initializer=[numpy_helper.from_array(w, "w")])
    return _model(g)


@dataclass(frozen=True)
class QParams:
    """Per-tensor quantization of ``QLinearConv``: uint8 activations/outputs, int8 weights (zero point 0)."""

    x_scale: float = 0.02
    x_zp: int = 128
    w_scale: float = 0.01
    y_scale: float = 0.0
    y_zp: int = 128


def qlinearconv_model(wl, w_q: np.ndarray, q: QParams):
    """``QLinearConv`` u8 x s8 -> u8 with per-tensor scales as initializers."""
    from onnx import TensorProto, helper, numpy_helper  # lazy: heavy (onnx)

    x = helper.make_tensor_value_info("x", TensorProto.UINT8, [wl.n, wl.c_in, wl.h, wl.w])
    y = helper.make_tensor_value_info("y", TensorProto.UINT8, [wl.n, wl.c_out, wl.out_h, wl.out_w])
    inits = [
        numpy_helper.from_array(np.array(q.x_scale, np.float32), "xs"),
        numpy_helper.from_array(np.array(q.x_zp, np.uint8), "xz"),
        numpy_helper.from_array(w_q.astype(np.int8), "w"),
        numpy_helper.from_array(np.array(q.w_scale, np.float32), "ws"),
        numpy_helper.from_array(np.array(0, np.int8), "wz"),
        numpy_helper.from_array(np.array(q.y_scale, np.float32), "ys"),
        numpy_helper.from_array(np.array(q.y_zp, np.uint8), "yz"),
    ]
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"], **_attrs(wl))
    return _model(helper.make_graph([node], "tvmq_qlinearconv", [x], [y], initializer=inits))


def session(model, threads: int):
    try:
        import onnxruntime as ort  # lazy: heavy (onnxruntime)
    except ImportError:
        raise TvmqError("onnxruntime is not installed: pip install onnxruntime (or tvmq[bench])") from None
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), sess_options=so, providers=["CPUExecutionProvider"])


def run_conv(wl, threads: int = 1, repeat: int = 5, number: int = 1, min_repeat_ms: float = 20.0, seed: int = 0,
             ref: np.ndarray | None = None) -> PeerResult:
    """onnxruntime fp32 ``Conv``: verified against numpy, then timed."""
    x, w = conv_inputs(wl, seed)
    try:
        sess = session(conv_model(wl, w), threads)
        y = sess.run(["y"], {"x": x})[0]
    except TvmqError:
        raise
    except Exception as e:  # noqa: BLE001 - onnxruntime errors are data
        return PeerResult("ort_conv", "run_error", error=one_line(e), threads=threads)
    if ref is None:
        ref = _memo(("f", wl.key, seed), lambda: conv2d_nchw(x, w, wl))
    err = float(np.max(np.abs(y.astype(np.float64) - ref)))
    if y.shape != ref.shape or not np.allclose(y, ref, *float_tolerance(wl)):
        return PeerResult("ort_conv", "wrong_result", max_abs_err=err, threads=threads,
                          error=f"max abs error {err:.3g} vs numpy")
    times = time_callable(lambda: sess.run(["y"], {"x": x}), repeat, number, min_repeat_ms)
    return PeerResult("ort_conv", "ok", times, err, threads=threads, info={"op": "Conv", "dtype": "float32"})


def u8s8_saturates(flags: set[str] | None = None) -> bool:
    """Whether onnxruntime's u8 x s8 int8 kernels here are ``vpmaddubsw`` ones, whose int16 pair sums
    saturate on full-range int8 weights (x86 with no VNNI/AMX int8 dot product): use 7-bit weights."""
    import platform

    from ..targets import cpu_flags

    if platform.machine() not in ("x86_64", "AMD64"):
        return False
    return not (set(cpu_flags() if flags is None else flags) & set(INT8_DOT_FLAGS))


def qlinear_inputs(wl, seed=0, weight_bits: int = 8):
    """Random u8 activations and symmetric int8 weights of ``weight_bits`` bits (7: within +-63)."""
    rng = np.random.default_rng(seed + 1)
    xq = rng.integers(0, 256, (wl.n, wl.c_in, wl.h, wl.w), dtype=np.uint8)
    lim = 2 ** (weight_bits - 1) - 1
    wq = rng.integers(-lim, lim + 1, (wl.c_out, wl.c_in, wl.kh, wl.kw), dtype=np.int16).astype(np.int8)
    # output scale chosen so the int32 accumulators' spread maps onto ~ +-64 steps (few saturate)
    w_std = np.sqrt(((2 * lim + 1) ** 2 - 1) / 12)  # std of a uniform integer in [-lim, lim]
    acc_std = 73.9 * w_std * np.sqrt(wl.c_in * wl.kh * wl.kw)  # std of (u8-128) times std of s8, summed
    q = QParams(y_scale=float(np.float32(0.02 * 0.01 * acc_std / 64.0)))
    return xq, wq, q


def qlinear_reference(xq, wq, wl, q: QParams) -> np.ndarray:
    """Exact integer accumulation of (x - zp) * w, then float requantize with round-half-even and saturation.

    Accumulated in float64 through BLAS: every partial sum is an integer below 2**53 (|product| <= 128 * 128,
    fewer than 2**39 terms), so it is exact, and ~10x faster than numpy's int64 path on large layers.
    """
    assert wl.c_in * wl.kh * wl.kw < 2 ** 39
    acc = conv2d_nchw(xq.astype(np.float64) - q.x_zp, wq, wl, acc=np.float64)
    scale = np.float32(q.x_scale) * np.float32(q.w_scale) / np.float32(q.y_scale)
    y = np.rint(acc.astype(np.float64) * float(scale)) + q.y_zp
    return np.clip(y, 0, 255)


def run_qlinearconv(wl, threads: int = 1, repeat: int = 5, number: int = 1, min_repeat_ms: float = 20.0,
                    seed: int = 0) -> PeerResult:
    """onnxruntime ``QLinearConv`` (uint8 activations, int8 weights, uint8 output): verified (within one
    quantization step: onnxruntime rounds its float rescale its own way), then timed. 7-bit weights
    where ``u8s8_saturates``."""
    bits = 7 if u8s8_saturates() else 8
    xq, wq, q = qlinear_inputs(wl, seed, bits)
    ref = _memo(("q", wl.key, seed, bits), lambda: qlinear_reference(xq, wq, wl, q))
    try:
        sess = session(qlinearconv_model(wl, wq, q), threads)
        y = sess.run(["y"], {"x": xq})[0]
    except TvmqError:
        raise
    except Exception as e:  # noqa: BLE001
        return PeerResult("ort_qlinearconv", "run_error", error=one_line(e), threads=threads)
    if y.shape != ref.shape:
        return PeerResult("ort_qlinearconv", "wrong_result", error=f"shape {y.shape} vs {ref.shape}", threads=threads)
    err = float(np.max(np.abs(y.astype(np.float64) - ref)))
    if err > 1.0:
        return PeerResult("ort_qlinearconv", "wrong_result", max_abs_err=err, threads=threads,
                          error=f"max abs error {err:g} quantization steps vs numpy")
    times = time_callable(lambda: sess.run(["y"], {"x": xq}), repeat, number, min_repeat_ms)
    return PeerResult("ort_qlinearconv", "ok", times, err, threads=threads,
                      info={"op": "QLinearConv", "dtype": "uint8 x int8 -> uint8", "weight_bits": bits})


def run(kind: str, wl, **kw) -> PeerResult:
    if kind == "conv":
        return run_conv(wl, **kw)
    if kind == "qlinearconv":
        return run_qlinearconv(wl, **kw)
    raise TvmqError(f"unknown onnxruntime peer {kind!r}; valid: {KINDS}")


def run_isolated(kind: str, wl, timeout_s: float = 600.0, threads: int = 1, **kw) -> PeerResult:
    """``run(kind, wl, **kw)`` in a child process (see the module's note on TVM's spinning workers)."""
    return run_child("tvmq.peers.onnxruntime_conv", f"ort_{kind}", wl, [kind], threads, timeout_s, **kw)


def main(argv=None):
    a = arg_parser("python -m tvmq.peers.onnxruntime_conv", KINDS).parse_args(argv)
    r = run(a.kind, workload_of(a), threads=a.threads, repeat=a.repeat, number=a.number,
            min_repeat_ms=a.min_repeat_ms, seed=a.seed)
    print(json.dumps(r.__dict__))


_REFS: dict = {}


def _memo(key, make):
    """The last layer's references (one float, one quantized): reused across thread counts."""
    if key not in _REFS:
        for k in [k for k in _REFS if k[0] == key[0]]:
            del _REFS[k]
        _REFS[key] = make()
    return _REFS[key]


if __name__ == "__main__":
    main()
