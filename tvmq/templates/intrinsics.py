"""Tensor intrinsics tvmq registers itself.

TVM 0.27's own ``dot_16x4_vnni`` passes ``<16 x i32>`` operands to
``llvm.x86.avx512.vpdpbusd.512``, which LLVM 22 declares with ``<64 x i8>``
operands, so it does not compile. This one has the same description (16
int32 lanes, each += 4 uint8 x 4 int8) and reinterprets the operands as the
byte vectors LLVM expects.
"""

from __future__ import annotations

_registered = False


def vnni_16x4(scope: str = "global") -> str:
    """Name of the VNNI 16x4 intrinsic whose accumulator lives in ``scope``."""
    return f"tvmq_dot_16x4_u8i8i32_vnni_{scope}"


def register():
    """Register the intrinsics once per process."""
    global _registered
    if _registered:
        return
    from tvm.s_tir import TensorIntrin
    from tvm.script import tirx as T

    def make(scope):
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
                C[T.ramp(T.int32(0), 1, 16)] = T.call_llvm_pure_intrin(
                    T.llvm_lookup_intrinsic_id("llvm.x86.avx512.vpdpbusd.512"),
                    C.vload([0], dtype="int32x16"),
                    a_u8x64,
                    b_i8x64,
                    dtype="int32x16",
                )

        return desc, impl

    for scope in ("global", "local"):
        try:
            TensorIntrin.register(vnni_16x4(scope), *make(scope))
        except Exception as e:  # noqa: BLE001 - already registered by an earlier call in this process
            if "already" not in str(e).lower():
                raise
    _registered = True
