"""The inner loop of a kernel's assembly: found, marked, registers and spills counted."""

import pytest

from explore_fixtures import A53, X86_ZEN4, tiny_task

from tvmq.explore import assembly as A

X86 = """\
main_compute_:
\tpushq\t%rbp
.LBB0_1:
\tvmovups\t(%rdi), %zmm0
.LBB0_2:
\tvpermi2ps\t%zmm1, %zmm0, %zmm3
\tvfmadd231ps\t(%rsi){1to16}, %zmm3, %zmm4
\tvfmadd231ps\t4(%rsi){1to16}, %zmm3, %zmm5
\tvmovups\t%zmm6, 64(%rsp)
\taddq\t$8, %rcx
\tjne\t.LBB0_2
\tdecq\t%rdx
\tjne\t.LBB0_1
.LBB0_3:
\tvpermi2ps\t%zmm1, %zmm0, %zmm2
\tjne\t.LBB0_3
\tretq
"""

A64 = """\
main_compute_:
.LBB1_4:
\tld1r\t{ v0.4s }, [x2], #4
\tfmla\tv1.4s, v2.4s, v0.4s
\tfmla\tv3.4s, v4.4s, v0.4s
\tstr\tq5, [sp, #16]
\tsubs\tx1, x1, #1
\tb.ne\t.LBB1_4
\tret
"""


def test_innermost_x86_is_the_loop_with_the_fmas():
    s = A.summary(X86, "x86_64")
    assert s["loop_text"].splitlines()[0] == ".LBB0_2:"
    assert s["loop_counts"]["vfmadd_ps"] == 2 and s["loop_counts"]["vperm"] == 1
    assert s["kernel_counts"]["vperm"] == 2
    assert s["registers"]["stack_accesses"] == 1
    assert s["registers"]["vector"] == 6  # zmm0, 1, 3, 4, 5, 6, each counted once
    assert any(".LBB0_3" in x and "vperm:1" in x for x in s["other_loops"])
    marked = [ln for ln in s["loop_text"].splitlines() if A.MARK in ln]
    assert len(marked) == 3 and marked[0].rstrip().endswith("vperm")


def test_outer_loop_is_not_innermost():
    assert [A.label(lp) for lp in A.inner_loops(A.loops(X86, "x86_64"))] == [".LBB0_2", ".LBB0_3"]


def test_aarch64_loop_fmla_and_spill():
    s = A.summary(A64, "aarch64")
    assert s["loop_counts"]["fma_f32x4"] == 2
    assert s["registers"]["stack_accesses"] == 1
    assert "<== fma_f32x4" in s["loop_text"]


def test_long_loop_is_cut():
    s = A.summary(X86, "x86_64", limit=2)
    assert s["loop_text"].splitlines()[-1].strip().startswith("...")


@pytest.mark.llvm
def test_int8_vnni_kernel_has_vpdpbusd_in_its_inner_loop():
    from tvmq.explore import kernel

    task = tiny_task("int8", X86_ZEN4)
    cfg = dict(task.space().default, dot="vnni", layout="nchwc", ib=4, ob=16)
    k = kernel.build(task, cfg, "vnni")
    assert k.asm["loop_counts"]["vpdpbusd"] > 0
    assert "<== vpdpbusd" in k.asm["loop_text"]


@pytest.mark.llvm
def test_aarch64_cross_compiled_float_kernel_has_fmla():
    from tvmq.explore import kernel

    task = tiny_task("float", A53, "aarch64")
    k = kernel.build(task, task.space().default, "default")
    assert k.asm["loop_counts"]["fma_f32x4"] > 0
    assert "fmla" in k.asm["loop_text"]
