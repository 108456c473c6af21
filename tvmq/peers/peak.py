"""The machine's measured peak: an fp32 FMA-throughput microkernel and a copy-bandwidth kernel, built with TVM.

Both are ordinary TVM kernels measured by tvmq's own runners (local worker processes with
``settings.threads`` TVM threads, or an RPC board), verified against numpy before their time counts:

* **FMA peak**: ``C[p, a, v] = sum_{r, k} A[p, k, a] * B[p, k, v]`` with a register block of ``rows``
  rows x ``cols`` columns (e.g. 6 x 64 = 24 AVX-512 vectors of independent accumulators); ``p`` is one
  block per thread, ``r`` re-reads the same L1-resident ``k`` slice, so the loop is FMA-bound. The
  inputs are small integers stored as float32, so every partial sum is exact and the output is
  checked for equality.
* **copy bandwidth**: ``B[i] = A[i]`` over arrays much larger than the last-level cache, parallel over
  threads; bytes moved = read + write (``2 * 4 * N``, write-allocate traffic not counted).

* **AMX peaks** (targets with AMX, measured locally): ``tdpbusd`` int8 and ``tdpbf16ps`` bf16 on four
  accumulator tiles per thread (``AmxKernel``), exact check; integer rows on AMX tiles and bf16 rows
  are then put against them.
* **int8 peak** (x86 targets with AVX-512 VNNI only): the same register-block idea with ``vpdpbusd``
  (u8 x s8 -> s32, 64 multiply-adds per instruction, counted as 128 ops), written in TVMScript with the
  LLVM intrinsic called directly on ``<64 x i8>`` operands (TVM 0.27's registered VNNI intrinsic does
  not compile with its LLVM 22, see the TVM notes). Exact integer check. Elsewhere: "not measured"
  with the reason, since an auto-vectorized int8 loop would be a code-generation result, not the
  machine's peak.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace

import numpy as np

from ..run.base import BuildResult, Verifier
from .peak_kernels import AmxKernel, CopyKernel, FmaKernel, VnniKernel, vector_lanes  # noqa: F401  (vector_lanes: also used by callers of this module)
from ..build.cross import export_lib

INT8_NOTE_NO_VNNI = ("not measured: the target has no AVX-512 VNNI dot product (the int8 peak kernel needs "
                     "vpdpbusd; an auto-vectorized int8 loop would not be the machine's peak)")
INT8_NOTE_NOT_X86 = ("not measured: no int8 dot-product peak kernel for this architecture (e.g. the Cortex-A53 has "
                     "no sdot; int8 runs through widening multiplies)")


def has_vnni(target_info) -> bool:
    return _has(target_info, "avx512vnni")


def has_amx(target_info) -> bool:
    return _has(target_info, "amx-int8") and _has(target_info, "amx-bf16")


def _has(target_info, feature: str) -> bool:
    import tvm  # lazy: heavy (TVM)

    if not _is_x86(target_info):
        return False
    try:
        return bool(tvm.get_global_func("target.target_has_feature")(feature, target_info.tvm_target()))
    except Exception:  # noqa: BLE001
        return False


class _KernelVerifier(Verifier):
    """Verifier for one microkernel: exact equality with its numpy reference."""

    def __init__(self, kernel, out_shape, out_dtype="float32", seed=0):
        self.kernel = kernel
        self._inputs = kernel.inputs(seed)
        self._spec = (tuple(out_shape), out_dtype)
        self._ref = None

    def inputs(self, config):
        return self._inputs

    def output_spec(self, config):
        return self._spec

    def check(self, config, out):
        if self._ref is None:
            self._ref = self.kernel.reference(self._inputs)
        if out.shape != self._ref.shape:
            return False, float("inf")
        err = float(np.max(np.abs(out.astype(np.float64) - self._ref))) if out.size else 0.0
        return err == 0.0, err


def _build(sch, target_info, path):
    import tvm  # lazy: heavy (TVM)


    mod = sch if isinstance(sch, tvm.IRModule) else sch.mod
    ex = tvm.compile(mod, target=target_info.tvm_target())
    return export_lib(ex, path, target_info.cross_cc)


def _is_x86(target_info) -> bool:
    return target_info.arch in ("x86_64", "AMD64", "i686")


def fma_kernel_for(target_info, threads: int) -> FmaKernel:
    lanes = vector_lanes(target_info.tvm_target())
    # 24 accumulators on x86 (32 zmm/ymm... registers with AVX-512; 16 with AVX2 -> 12), 24 of NEON's 32.
    col_vecs = 4 if lanes == 16 or not _is_x86(target_info) else 2
    reps = 16384 if target_info.runner == "local" else 256  # emulated boards are ~100x slower
    return FmaKernel(blocks=max(1, threads), lanes=lanes, col_vecs=col_vecs, reps=reps)


def measure(target_info, runner, settings, threads_list=(1, 2), bandwidth: bool = True, seed: int = 0,
            log=None) -> dict:
    """Peak fp32 GFLOPS (and copy GB/s) per thread count, measured by ``runner``.

    Returns ``{"fp32": {threads: {...}}, "bandwidth": {threads: {...}}, "int8": note}``; each entry has
    ``gflops``/``gbps`` (the best of ``max(settings.repeat, 20)`` short samples), ``median``, ``min``, ``verified``
    and ``status``.
    """
    settings = replace(settings, repeat=max(settings.repeat, 20), min_repeat_ms=min(settings.min_repeat_ms, 10))
    vnni = has_vnni(target_info)
    amx = has_amx(target_info) and runner.label == "local"
    note = INT8_NOTE_NO_VNNI if _is_x86(target_info) else INT8_NOTE_NOT_X86
    out = {"fp32": {}, "bandwidth": {}, "int8": {} if vnni else note, "kernel": None, "runner": runner.label,
           "int8_kernel": "6x64 int32 block of vpdpbusd (u8 x s8, 24 zmm accumulators), k=64" if vnni else None}
    with tempfile.TemporaryDirectory(prefix="tvmq-peak-") as d:
        for t in threads_list:
            st = replace(settings, threads=t)
            k = fma_kernel_for(target_info, t)
            out["kernel"] = (f"{k.rows}x{k.cols} fp32 register block ({k.rows * k.col_vecs} vectors of {k.lanes}), "
                             f"k={k.k}, {k.reps} reps, one block per thread")
            out["fp32"][t] = _run(k, d, f"fma{t}", target_info, runner, st, seed, k.flops, (k.blocks, k.rows, k.cols),
                                  "gflops", 1e9)
            if log:
                log(f"peak fp32, {t} thread(s): {_fmt(out['fp32'][t], 'gflops', 'GFLOPS')}")
            if vnni:
                vk = VnniKernel(blocks=max(1, t), reps=k.reps)
                out["int8"][t] = _run(vk, d, f"vnni{t}", target_info, runner, st, seed, vk.ops, vk.out_shape, "gops",
                                      1e9, "int32")
                if log:
                    log(f"peak int8 (VNNI), {t} thread(s): {_fmt(out['int8'][t], 'gops', 'GOPS')}")
            for kind, unit in (("int8", "GOPS"), ("bf16", "GFLOPS")) if amx else ():
                ak = AmxKernel(blocks=max(1, t), kind=kind)
                e = _run(ak, d, f"amx_{kind}{t}", target_info, runner, st, seed, ak.ops, ak.out_shape, "gops", 1e9,
                         ak.out_dtype)
                out.setdefault(f"amx_{kind}", {})[t] = e
                if log:
                    log(f"peak AMX {kind}, {t} thread(s): {_fmt(e, 'gops', unit)}")
            if bandwidth:
                n = (1 << 24) if target_info.runner == "local" else (1 << 20)
                ck = CopyKernel(blocks=max(1, t), n=n, lanes=vector_lanes(target_info.tvm_target()))
                out["bandwidth"][t] = _run(ck, d, f"copy{t}", target_info, runner, st, seed, ck.bytes, (ck.n,),
                                           "gbps", 1e9)
                if log:
                    log(f"copy bandwidth, {t} thread(s): {_fmt(out['bandwidth'][t], 'gbps', 'GB/s')}")
    return out


def merge(a: dict, b: dict, passes: bool = True) -> dict:
    """Two peak measurements -> the better entry per thread count (``passes``: they measured the same
    thread counts twice, e.g. before and after a benchmark, and the pass count adds up)."""
    out = dict(a)
    for kind, key in (("fp32", "gflops"), ("bandwidth", "gbps"), ("int8", "gops"), ("amx_int8", "gops"),
                      ("amx_bf16", "gops")):
        if not isinstance(a.get(kind, {}), dict):
            continue  # "not measured" note
        m = dict(a.get(kind) or {})
        for t, e in (b.get(kind) or {}).items():
            if (e.get(key) or 0) > ((m.get(t) or {}).get(key) or 0):
                m[t] = e
        out[kind] = m
    out["passes"] = a.get("passes", 1) + b.get("passes", 1) if passes else max(a.get("passes", 1),
                                                                                b.get("passes", 1))
    return out


def _fmt(e, key, unit):
    return f"{e[key]:.1f} {unit}" if e.get(key) else f"failed ({e.get('status')}: {e.get('error', '')})"


def _run(kernel, d, name, target_info, runner, settings, seed, work, out_shape, key, scale, out_dtype="float32"):
    path = os.path.join(d, f"{name}.so")
    try:
        _build(kernel.schedule(), target_info, path)
    except Exception as e:  # noqa: BLE001 - report, do not abort the benchmark
        return {key: None, "status": "build_error", "error": str(e).strip().splitlines()[-1][:200], "verified": False}
    ver = _KernelVerifier(kernel, out_shape, out_dtype, seed)
    (res,) = runner.run([BuildResult({"kernel": name}, "ok", path)], ver, settings)
    if not res.ok:
        return {key: None, "status": res.status, "error": res.error, "verified": False}
    ts = np.array(res.times)
    # A peak is what the machine can do: the best sample (others on a shared machine only slow it down).
    return {key: work / float(ts.min()) / scale, "median": work / float(np.median(ts)) / scale,
            "min": work / float(ts.max()) / scale, "samples": len(ts), "verified": True, "status": "ok",
            "threads": settings.threads}
