"""The peak's microkernels: an fp32 FMA register block, a copy-bandwidth kernel, a VNNI int8 block.

Each is a small TVM kernel with its exact numpy reference (``inputs``, ``reference``) and a
``schedule()`` to compile; ``tvmq.peers.peak`` measures them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ..templates import amx


def vector_lanes(target) -> int:
    """fp32 lanes of the widest vector unit the TVM target enables (16 AVX-512, 8 AVX2, 4 NEON/SSE)."""
    import tvm  # lazy: heavy (TVM)

    has = tvm.get_global_func("target.target_has_feature")
    t = tvm.target.Target(target) if isinstance(target, dict) else target
    for feat, lanes in (("avx512f", 16), ("avx2", 8), ("avx", 8), ("neon", 4), ("sse2", 4)):
        try:
            if has(feat, t):
                return lanes
        except Exception:  # noqa: BLE001 - a feature the target kind does not know
            continue
    return 4


@dataclass(frozen=True)
class FmaKernel:
    """Shape of the FMA microkernel; ``flops`` counts a multiply-add as two."""

    blocks: int  # one per thread
    lanes: int
    rows: int = 6
    col_vecs: int = 4
    k: int = 64
    reps: int = 16384

    @property
    def cols(self) -> int:
        return self.lanes * self.col_vecs

    @property
    def flops(self) -> int:
        return 2 * self.blocks * self.reps * self.k * self.rows * self.cols

    def irmodule(self):
        import tvm  # lazy: heavy (TVM)
        from tvm import te  # lazy: heavy (TVM)

        P, K, R, C, Rp = self.blocks, self.k, self.rows, self.cols, self.reps
        a = te.placeholder((P, K, R), "float32", name="A")
        b = te.placeholder((P, K, C), "float32", name="B")
        r = te.reduce_axis((0, Rp), name="r")
        k = te.reduce_axis((0, K), name="k")
        c = te.compute((P, R, C), lambda p, i, j: te.sum(a[p, k, i] * b[p, k, j], axis=[r, k]), name="C")
        return tvm.IRModule({"main": te.create_prim_func([a, b, c]).with_attr("global_symbol", "main")})

    def schedule(self):
        import tvm  # lazy: heavy (TVM)

        sch = tvm.s_tir.Schedule(self.irmodule())
        blk = sch.get_sblock("C")
        sch.cache_write(blk, 0, "local")
        p, i, j, r, k = sch.get_loops(blk)
        jo, ji = sch.split(j, [self.col_vecs, self.lanes])
        sch.reorder(p, r, k, i, jo, ji)
        sch.unroll(i)
        sch.unroll(jo)
        sch.vectorize(ji)
        sch.parallel(p)
        wb = sch.get_sblock("C_local")
        sch.reverse_compute_at(wb, p)
        sch.decompose_reduction(blk, r)
        return sch

    def inputs(self, seed=0):
        rng = np.random.default_rng(seed)
        a = rng.integers(-1, 2, (self.blocks, self.k, self.rows)).astype("float32")
        b = rng.integers(-1, 2, (self.blocks, self.k, self.cols)).astype("float32")
        return [a, b]

    def reference(self, ins):
        a, b = (x.astype(np.int64) for x in ins)
        return self.reps * np.einsum("pki,pkj->pij", a, b)


@dataclass(frozen=True)
class CopyKernel:
    """``B[i] = A[i]`` over ``n`` float32 in ``blocks`` parallel chunks; ``bytes`` = read + write."""

    blocks: int
    n: int = 1 << 24
    lanes: int = 16

    @property
    def bytes(self) -> int:
        return 2 * 4 * self.n

    def irmodule(self):
        import tvm  # lazy: heavy (TVM)
        from tvm import te  # lazy: heavy (TVM)

        a = te.placeholder((self.n,), "float32", name="A")
        b = te.compute((self.n,), lambda i: a[i], name="B")
        return tvm.IRModule({"main": te.create_prim_func([a, b]).with_attr("global_symbol", "main")})

    def schedule(self):
        import tvm  # lazy: heavy (TVM)

        sch = tvm.s_tir.Schedule(self.irmodule())
        (i,) = sch.get_loops(sch.get_sblock("B"))
        po, rest = sch.split(i, [self.blocks * 8, None])
        ro, ri = sch.split(rest, [None, self.lanes * 4])
        ri_o, ri_i = sch.split(ri, [4, self.lanes])
        sch.parallel(po)
        sch.unroll(ri_o)
        sch.vectorize(ri_i)
        return sch

    def inputs(self, seed=0):
        # distinct values (exact in float32 up to 2**24), cheap to make for 64 MB
        return [np.arange(self.n, dtype=np.float32) - np.float32(seed)]

    def reference(self, ins):
        return ins[0]


@dataclass(frozen=True)
class VnniKernel:
    """``C[p, i, j, l] = sum_{r, k, b} A[p, k, i, b] * B[p, k, j, l, b]`` (u8 x s8 -> s32) with ``vpdpbusd``
    on a 6 x ``col_vecs`` block of 16-lane int32 accumulators; ``ops`` counts a multiply-add as two."""

    blocks: int
    col_vecs: int = 4
    k: int = 64
    reps: int = 16384
    rows: int = 6

    @property
    def ops(self) -> int:
        return 2 * self.blocks * self.reps * self.k * self.rows * self.col_vecs * 64

    @property
    def out_shape(self):
        return (self.blocks, self.rows, self.col_vecs, 16)

    def schedule(self):
        """Not a schedule of a TE op: the kernel is written out in TVMScript (an IRModule to compile)."""
        return _vnni_module(self.blocks, self.k, self.reps, self.col_vecs)

    def inputs(self, seed=0):
        rng = np.random.default_rng(seed)
        a8 = rng.integers(0, 3, (self.blocks, self.k, self.rows, 4)).astype(np.uint8)
        b8 = rng.integers(-2, 3, (self.blocks, self.k, self.col_vecs, 16, 4)).astype(np.int8)
        # four bytes per int32 lane: what vpdpbusd reads
        return [a8.view(np.int32).reshape(a8.shape[:3]), b8.view(np.int32).reshape(b8.shape[:4])]

    def reference(self, ins):
        a8 = ins[0].view(np.uint8).reshape(*ins[0].shape, 4).astype(np.int64)
        b8 = ins[1].view(np.int8).reshape(*ins[1].shape, 4).astype(np.int64)
        return self.reps * np.einsum("pkib,pkjlb->pijl", a8, b8)


def _vnni_module(P: int, K: int, REPS: int, CV: int):
    """The VNNI microkernel as TVMScript; two 3-row halves keep each accumulator buffer small enough for
    LLVM to keep in registers."""
    import tvm  # lazy: heavy (TVM)
    from tvm.script import tirx as T  # lazy: heavy (TVM)

    N = 3 * CV * 16

    @T.prim_func
    def main(A: T.Buffer((P, K, 6), "int32"), B: T.Buffer((P, K, CV, 16), "int32"),
             C: T.Buffer((P, 6, CV, 16), "int32")):
        T.func_attr({"global_symbol": "main", "tirx.noalias": True})
        for p in T.parallel(P):
            acc0 = T.decl_buffer((N,), "int32", scope="local")
            acc1 = T.decl_buffer((N,), "int32", scope="local")
            for i in T.unroll(3 * CV):
                acc0[T.Ramp(i * 16, 1, 16)] = T.broadcast(T.int32(0), 16)
                acc1[T.Ramp(i * 16, 1, 16)] = T.broadcast(T.int32(0), 16)
            for r in range(REPS):
                for k in range(K):
                    for i in T.unroll(3):
                        for j in T.unroll(CV):
                            acc0[T.Ramp((i * CV + j) * 16, 1, 16)] = T.call_llvm_pure_intrin(
                                "int32x16", "llvm.x86.avx512.vpdpbusd.512", acc0[T.Ramp((i * CV + j) * 16, 1, 16)],
                                T.reinterpret("int8x64", T.broadcast(A[p, k, i], 16)),
                                T.reinterpret("int8x64", B[p, k, j, T.Ramp(0, 1, 16)]))
                    for i in T.unroll(3):
                        for j in T.unroll(CV):
                            acc1[T.Ramp((i * CV + j) * 16, 1, 16)] = T.call_llvm_pure_intrin(
                                "int32x16", "llvm.x86.avx512.vpdpbusd.512", acc1[T.Ramp((i * CV + j) * 16, 1, 16)],
                                T.reinterpret("int8x64", T.broadcast(A[p, k, i + 3], 16)),
                                T.reinterpret("int8x64", B[p, k, j, T.Ramp(0, 1, 16)]))
            for i in T.unroll(3):
                for j in T.unroll(CV):
                    C[p, i, j, T.Ramp(0, 1, 16)] = acc0[T.Ramp((i * CV + j) * 16, 1, 16)]
                    C[p, i + 3, j, T.Ramp(0, 1, 16)] = acc1[T.Ramp((i * CV + j) * 16, 1, 16)]

    return tvm.IRModule({"main": main})


@dataclass(frozen=True)
class AmxKernel:
    """``tdpbusd`` (int8) or ``tdpbf16ps`` (bf16) on 4 accumulator tiles per thread, A and B tiles loaded once
    (:func:`tvmq.templates.amx.peak_func`); every source element 1, so each accumulator is ``iters * K``."""

    blocks: int
    kind: str = "int8"
    iters: int = 100_000

    @property
    def k(self) -> int:
        return 64 if self.kind == "int8" else 32

    @property
    def ops(self) -> int:
        return 2 * self.blocks * self.iters * 4 * 16 * 16 * self.k

    @property
    def out_shape(self):
        return (self.blocks, 4, 16, 16)

    @property
    def out_dtype(self) -> str:
        return "int32" if self.kind == "int8" else "float32"

    def schedule(self):
        import tvm  # lazy: heavy (TVM)


        return tvm.IRModule({"main": amx.peak_func(self.iters, self.blocks, self.kind)})

    def inputs(self, seed=0):
        word = 0x01010101 if self.kind == "int8" else 0x3F803F80  # bytes 1, or two bf16 1.0
        return [np.full((self.blocks, 4, 16, 16), word, np.int32)]

    def reference(self, ins):
        return np.full(self.out_shape, self.iters * self.k, np.float64)
