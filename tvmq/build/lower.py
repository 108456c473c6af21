"""Lowering: TVM's TIR pipeline plus tvmq's own rewrites, then code generation.

Every kernel tvmq builds goes through :func:`compile_mod`. On x86 targets with AVX-512 it adds
one rewrite after TVM's pipeline: a vectorized lookup ``codebook[idx]`` (a gather with a vector
index, which LLVM would emit as one scalar load + insert per lane) becomes register permutes of
the table held in registers:

* float32 tables of 16 or 32 entries, 16 lanes per ``vpermps`` / ``vpermi2ps`` (LLVM may pick
  the integer-domain twins ``vpermd`` / ``vpermi2d``);
* int8 tables of 64 entries, 64 lanes per ``vpermb``, where the target has AVX-512 VBMI.

The table is recognised by its buffer name (``codebook``, as every codebook operator of
``tvmq.ops`` names it, or a lowered alias ``codebook_N``). Other sizes and targets keep the gather.
"""

from __future__ import annotations

import functools

CODEBOOK_BUFFER = "codebook"
PIPELINE = "tvmq_avx512"
_PERMUTES = {16: "llvm.x86.avx512.permvar.sf.512", 32: "llvm.x86.avx512.vpermi2var.ps.512"}
_VPERMB = "llvm.x86.avx512.permvar.qi.512"
_registered: set[str] = set()


@functools.cache
def _types():
    from tvm import tirx  # lazy: TVM is heavy and stays out of start-up

    i0, i1 = tirx.IntImm("int32", 0), tirx.IntImm("int32", 1)
    load = tirx.BufferLoad(tirx.decl_buffer((4,), "float32"), [i0])
    return type(load), type(tirx.Ramp(i0, i1, 4))


def permute_codebook_lookups(func, vbmi: bool = False):
    """``func`` with every vectorized lookup in a ``codebook`` buffer made a register permute:
    float32 tables of 16/32 entries, 16 lanes at a time (AVX-512F); with ``vbmi`` also int8
    tables of 64 entries, 64 lanes at a time (``vpermb``).

    Returns (new function, number of lookups rewritten).
    """
    import tvm_ffi  # lazy: TVM is heavy and stays out of start-up
    from tvm import tirx  # lazy: TVM is heavy and stays out of start-up

    load_t, ramp_t = _types()
    count = 0

    def const(v):
        return tirx.IntImm("int32", v)

    def table(src, start, lanes):
        return tirx.BufferLoad(src, [tirx.Ramp(const(start), const(1), lanes)])

    def lanes_of(idx, k, width):
        return tirx.Shuffle([idx], [const(j) for j in range(k, k + width)])

    def rewrite(load):
        nonlocal count
        src = load.source
        name = str(getattr(src, "name", ""))
        if not (name == CODEBOOK_BUFFER or name.startswith(CODEBOOK_BUFFER + "_")):
            return load
        (idx,) = load.indices
        if isinstance(idx, ramp_t):  # a contiguous load, not a lookup
            return load
        try:
            entries = int(src.shape[0])
        except (AttributeError, TypeError, IndexError, ValueError):  # not a 1-D table of known size
            return load
        ty = str(load.ty)
        dtype, _, lanes = ty.partition("x")
        lanes = int(lanes or 1)
        if dtype == "float32" and entries in _PERMUTES and lanes % 16 == 0:
            width = 16

            def permute(ix):
                ix = tirx.Cast("int32x16", ix)  # the permutes take <16 x i32> indices
                if entries == 16:
                    return tirx.call_llvm_pure_intrin("float32x16", _PERMUTES[16], table(src, 0, 16), ix)
                return tirx.call_llvm_pure_intrin("float32x16", _PERMUTES[32], table(src, 0, 16), ix,
                                                  table(src, 16, 16))
        elif vbmi and dtype == "int8" and entries == 64 and lanes % 64 == 0:
            width = 64

            def permute(ix):  # vpermb: byte j of the result = table[idx[j] & 63]
                return tirx.call_llvm_pure_intrin("int8x64", _VPERMB, table(src, 0, 64), tirx.Cast("int8x64", ix))
        else:
            return load
        count += 1
        if lanes == width:
            return permute(idx)
        # Wider vectors: one permute per register width, concatenated.
        parts = [permute(lanes_of(idx, k, width)) for k in range(0, lanes, width)]
        return tirx.Shuffle(parts, [const(j) for j in range(lanes)])

    body = tvm_ffi.structural_map(func.body, [(load_t, rewrite)])
    return (func.with_body(body) if count else func), count


def _register(vbmi: bool) -> str:
    import tvm  # lazy: TVM is heavy and stays out of start-up
    from tvm import tirx  # lazy: TVM is heavy and stays out of start-up
    from tvm.tirx import compilation_pipeline as tp  # lazy: TVM is heavy and stays out of start-up

    name = PIPELINE + ("_vbmi" if vbmi else "")
    if name in _registered:
        return name

    def pipeline():
        base, finalize_host, finalize_device = tp.get_tir_pipeline("s_tir")

        @tvm.transform.module_pass(opt_level=0, name="tvmq.PermuteCodebookLookups")
        def run(mod, _ctx):
            mod = base(mod)
            for gv, f in list(mod.functions.items()):
                if isinstance(f, tirx.PrimFunc):
                    mod[gv] = permute_codebook_lookups(f, vbmi)[0]
            return mod

        return run, finalize_host, finalize_device

    tp.PIPELINE_MAP[name] = pipeline
    _registered.add(name)
    return name


def pipeline_for(target) -> str:
    """The TIR pipeline name for a ``tvm.target.Target``: tvmq's on x86 with AVX-512F (with byte
    permutes where it also has AVX-512 VBMI), else TVM's default."""
    import tvm  # lazy: TVM is heavy and stays out of start-up

    has = tvm.get_global_func("target.target_has_feature")

    def feature(f):
        try:
            return bool(has(f, target))
        except Exception:  # noqa: BLE001 - not a CPU target with features
            return False

    if feature("avx512f"):
        return _register(feature("avx512vbmi"))
    return "default"


def compile_mod(mod, target):
    """``tvm.compile`` with tvmq's pipeline for ``target`` (a ``tvm.target.Target`` or its JSON dict)."""
    import tvm  # lazy: TVM is heavy and stays out of start-up

    if not isinstance(target, tvm.target.Target):
        target = tvm.target.Target(target)
    return tvm.compile(mod, target=target, tir_pipeline=pipeline_for(target))
