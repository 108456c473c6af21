"""PyTorch (oneDNN) as an optional peer: fp32 ``conv2d``, bf16 ``conv2d`` and the quantized int8 conv.

Each runs where torch is installed (``pip install torch==2.13.0``, the CPU build), in a child process
like onnxruntime (see ``tvmq.peers.onnxruntime_conv``), with ``torch.set_num_threads(threads)``:

* ``conv``: fp32 ``torch.nn.functional.conv2d`` (oneDNN), NCHW;
* ``conv_bf16``: the same in bfloat16, inputs and weights channels-last (oneDNN's AMX-BF16 kernel
  where the CPU has it), checked against the float64 convolution of the bf16-rounded inputs;
* ``qconv``: ``torch.ao.nn.quantized.Conv2d`` on the ``onednn`` engine, u8 x s8 -> u8 with the same
  per-tensor scales and zero points as onnxruntime's ``QLinearConv`` (on AMX machines oneDNN runs
  ``brg_conv_fwd:..._amx``), input channels-last (packed once, as tvmq's kernels get packed data);
  7-bit weights on an x86 CPU without an int8 dot product, as for onnxruntime (``u8s8_saturates``).

Every result is verified against numpy before its time counts.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np

from ..errors import one_line
from ..ops.float import float_tolerance
from ..ops.reference import conv2d_nchw
from ..templates.amx_bf16 import from_bf16_bits, to_bf16_bits
from .base import PeerResult, conv_inputs, time_callable
from .child import arg_parser, run_child, workload_of
from .onnxruntime_conv import qlinear_inputs, qlinear_reference, u8s8_saturates

KINDS = ("conv", "conv_bf16", "qconv")
NAMES = {"conv": "torch.conv", "conv_bf16": "torch.conv_bf16", "qconv": "torch.qconv"}
ENGINE = "onednn"


def available() -> bool:
    """Whether torch can be imported here (checked without importing it)."""
    return importlib.util.find_spec("torch") is not None


def _bf16_round(a: np.ndarray) -> np.ndarray:
    return from_bf16_bits(to_bf16_bits(a))


def _float(wl, threads, repeat, number, min_repeat_ms, seed, bf16: bool) -> PeerResult:
    import torch  # lazy: optional dependency, imported only in the child that measures it
    import torch.nn.functional as F  # lazy: optional (torch)

    name = NAMES["conv_bf16" if bf16 else "conv"]
    x, w = conv_inputs(wl, seed)
    if bf16:
        x, w = _bf16_round(x), _bf16_round(w)
    ref = conv2d_nchw(x, w, wl)
    pt, pl, pb, pr = wl.pad  # ONNX order: top, left, bottom, right
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)
    if bf16:
        tx = tx.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
        tw = tw.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    if pt != pb or pl != pr:
        tx = F.pad(tx, (pl, pr, pt, pb))
        pad = (0, 0)
    else:
        pad = (pt, pl)

    def call():
        with torch.no_grad():
            return F.conv2d(tx, tw, None, stride=tuple(wl.stride), padding=pad)

    try:
        y = call().float().numpy()
    except Exception as e:  # noqa: BLE001 - torch errors are data
        return PeerResult(name, "run_error", error=one_line(e), threads=threads)
    if y.shape != ref.shape:
        return PeerResult(name, "wrong_result", error=f"shape {y.shape} vs {ref.shape}", threads=threads)
    err = float(np.max(np.abs(y.astype(np.float64) - ref)))
    # bf16 output: one rounding of each output (8 significant bits) on top of fp32 accumulation
    atol, rtol = (float(np.max(np.abs(ref))) * 2.0 ** -7, 2.0 ** -7) if bf16 else float_tolerance(wl)
    if not np.allclose(y, ref, rtol=rtol, atol=atol):
        return PeerResult(name, "wrong_result", max_abs_err=err, threads=threads, error=f"max abs error {err:.3g}")
    times = time_callable(call, repeat, number, min_repeat_ms)
    return PeerResult(name, "ok", times, err, threads=threads,
                      info={"op": "conv2d", "dtype": "bfloat16" if bf16 else "float32", "torch": torch.__version__})


def _qconv(wl, threads, repeat, number, min_repeat_ms, seed) -> PeerResult:
    import torch  # lazy: optional dependency
    from torch.ao.nn.quantized import Conv2d  # lazy: optional (torch)

    name = NAMES["qconv"]
    bits = 7 if u8s8_saturates() else 8  # oneDNN's AVX2 u8 x s8 path saturates like onnxruntime's
    xq, wq, q = qlinear_inputs(wl, seed, bits)
    ref = qlinear_reference(xq, wq, wl, q)
    pt, pl, pb, pr = wl.pad  # ONNX order: top, left, bottom, right
    if pt != pb or pl != pr:
        return PeerResult(name, "unsupported", error="torch's quantized conv takes symmetric padding only",
                          threads=threads)
    try:
        torch.backends.quantized.engine = ENGINE
        m = Conv2d(wl.c_in, wl.c_out, (wl.kh, wl.kw), stride=tuple(wl.stride), padding=(pt, pl), bias=False)
        m.set_weight_bias(torch._make_per_tensor_quantized_tensor(torch.from_numpy(wq), q.w_scale, 0), None)
        m.scale, m.zero_point = float(q.y_scale), int(q.y_zp)
        qx = torch._make_per_tensor_quantized_tensor(torch.from_numpy(xq), q.x_scale, q.x_zp)
        qx = qx.contiguous(memory_format=torch.channels_last)

        def call():
            with torch.no_grad():
                return m(qx)

        y = call().int_repr().numpy()
    except Exception as e:  # noqa: BLE001
        return PeerResult(name, "run_error", error=one_line(e), threads=threads)
    if y.shape != ref.shape:
        return PeerResult(name, "wrong_result", error=f"shape {y.shape} vs {ref.shape}", threads=threads)
    err = float(np.max(np.abs(y.astype(np.float64) - ref)))
    if err > 1.0:
        return PeerResult(name, "wrong_result", max_abs_err=err, threads=threads,
                          error=f"max abs error {err:g} quantization steps vs numpy")
    times = time_callable(call, repeat, number, min_repeat_ms)
    return PeerResult(name, "ok", times, err, threads=threads,
                      info={"op": "quantized.conv2d", "engine": ENGINE, "dtype": "uint8 x int8 -> uint8",
                            "weight_bits": bits, "torch": torch.__version__})


def run(kind: str, wl, threads: int = 1, repeat: int = 5, number: int = 1, min_repeat_ms: float = 20.0,
        seed: int = 0) -> PeerResult:
    if kind not in KINDS:
        return PeerResult(f"torch.{kind}", "unsupported", error=f"unknown torch peer {kind!r}; valid: {KINDS}")
    if not available():
        return PeerResult(NAMES[kind], "unavailable", error="torch is not installed: pip install torch==2.13.0",
                          threads=threads)
    import torch  # lazy: optional dependency

    torch.set_num_threads(int(threads))
    if kind == "qconv":
        return _qconv(wl, threads, repeat, number, min_repeat_ms, seed)
    return _float(wl, threads, repeat, number, min_repeat_ms, seed, bf16=kind == "conv_bf16")


def run_isolated(kind: str, wl, timeout_s: float = 600.0, threads: int = 1, **kw) -> PeerResult:
    """``run(kind, wl, **kw)`` in a child process of its own."""
    return run_child("tvmq.peers.torch_conv", NAMES.get(kind, kind), wl, [kind], threads, timeout_s, **kw)


def main(argv=None):
    a = arg_parser("python -m tvmq.peers.torch_conv", KINDS).parse_args(argv)
    r = run(a.kind, workload_of(a), threads=a.threads, repeat=a.repeat, number=a.number,
            min_repeat_ms=a.min_repeat_ms, seed=a.seed)
    print(json.dumps(r.__dict__))


if __name__ == "__main__":
    main()
