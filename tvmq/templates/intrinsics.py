"""Tensor intrinsics tvmq registers itself: 16x4 int8 dot products (u8 x s8 -> s32).

Both have the description of TVM's ``dot_16x4_vnni`` (16 int32 lanes, each += 4 uint8 x 4 int8):

* ``vnni``: one ``vpdpbusd`` (AVX-512 VNNI). TVM 0.27's own intrinsic passes ``<16 x i32>``
  operands to ``llvm.x86.avx512.vpdpbusd.512``, which LLVM 22 declares with ``<64 x i8>``
  operands, so it does not compile; this one reinterprets the operands as byte vectors.
* ``pmaddubsw``: ``vpmaddubsw`` (pairs of u8 x s8 summed into int16, saturating) then
  ``vpmaddwd`` by ones (pairs of int16 into int32), for AVX-512BW CPUs without VNNI
  (skylake-avx512). Exact only when a pair sum fits int16, i.e. for 7-bit weights (``int8w7``).
"""

from __future__ import annotations

_registered = False
DOTS = ("vnni", "pmaddubsw")


def dot_16x4(kind: str = "vnni", scope: str = "global") -> str:
    """Name of the 16x4 dot-product intrinsic ``kind`` whose accumulator lives in ``scope``."""
    return f"tvmq_dot_16x4_u8i8i32_{kind}_{scope}"


def register():
    """Register the intrinsics once per process."""
    global _registered
    if _registered:
        return
    from tvm import tirx  # lazy: heavy (TVM)
    from tvm.s_tir import TensorIntrin  # lazy: heavy (TVM)
    from tvm.script import tirx as T  # lazy: heavy (TVM)

    def intrin(name, dtype, *args):
        return tirx.call_llvm_pure_intrin(dtype, name, *args)

    def make(kind, scope):
        def accumulate(c, a_u8x64, b_i8x64):
            """c + the 16 dot products of a's 4 bytes with each 4-byte row of b (the TIR expression)."""
            if kind == "vnni":
                return intrin("llvm.x86.avx512.vpdpbusd.512", "int32x16", c, a_u8x64, b_i8x64)
            pairs = intrin("llvm.x86.avx512.pmaddubs.w.512", "int16x32", a_u8x64, b_i8x64)
            ones = tirx.Broadcast(tirx.IntImm("int16", 1), 32)
            return c + intrin("llvm.x86.avx512.pmaddw.d.512", "int32x16", pairs, ones)

        @T.prim_func(s_tir=True)
        def desc(
            A: T.Buffer((4,), "uint8", offset_factor=1),
            B: T.Buffer((16, 4), "int8", offset_factor=1),
            C: T.Buffer((16,), "int32", offset_factor=1, scope=scope),
        ) -> None:
            with T.sblock("root"):
                T.reads(C[0:16], A[0:4], B[0:16, 0:4])
                T.writes(C[0:16])
                for i in T.serial(0, 16):
                    for k in T.serial(0, 4):
                        with T.sblock("update"):
                            vi, vk = T.axis.remap("SR", [i, k])
                            C[vi] = C[vi] + T.cast(A[vk], "int32") * T.cast(B[vi, vk], "int32")

        @T.prim_func(s_tir=True)
        def impl(
            A: T.Buffer((4,), "uint8", offset_factor=1),
            B: T.Buffer((16, 4), "int8", offset_factor=1),
            C: T.Buffer((16,), "int32", offset_factor=1, scope=scope),
        ) -> None:
            with T.sblock("root"):
                T.reads(C[0:16], A[0:4], B[0:16, 0:4])
                T.writes(C[0:16])
                a_i32 = T.reinterpret(A.vload([0], "uint8x4"), dtype="int32")
                a_u8x64 = T.reinterpret(T.broadcast(a_i32, 16), dtype="uint8x64")
                b_i8x64 = B.vload([0, 0], dtype="int8x64")
                C[T.ramp(T.int32(0), 1, 16)] = accumulate(C.vload([0], dtype="int32x16"), a_u8x64, b_i8x64)

        return desc, impl

    for kind in DOTS:
        for scope in ("global", "local"):
            try:
                TensorIntrin.register(dot_16x4(kind, scope), *make(kind, scope))
            except Exception as e:  # noqa: BLE001 - already registered by an earlier call in this process
                if "already" not in str(e).lower():
                    raise
    _registered = True
