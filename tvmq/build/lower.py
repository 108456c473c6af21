"""Lowering: TVM's TIR pipeline plus tvmq's own rewrites, then code generation.

Every kernel tvmq builds goes through :func:`compile_mod`. On x86 targets with AVX-512 it adds
one rewrite after TVM's pipeline: a vectorized codebook lookup ``codebook[idx]`` (16 float32
lanes or a multiple, a gather with a vector index) over a codebook of 16 or 32 entries becomes one register
permute (``vpermps`` / ``vpermi2ps``, or their integer-domain twins ``vpermd`` / ``vpermi2d``) of the codebook held in one or two zmm registers, instead of
the 16 scalar loads + ``vinsertps`` LLVM emits for the gather. The codebook buffer is recognised
by its name (``codebook``, as every codebook operator of ``tvmq.ops`` names it, or a lowered
alias ``codebook_N``); other sizes and
other targets keep the gather.
"""

from __future__ import annotations

CODEBOOK_BUFFER = "codebook"
PIPELINE = "tvmq_avx512"
_PERMUTES = {16: "llvm.x86.avx512.permvar.sf.512", 32: "llvm.x86.avx512.vpermi2var.ps.512"}
_registered = False


def _types():
    from tvm import tirx

    i0, i1 = tirx.IntImm("int32", 0), tirx.IntImm("int32", 1)
    load = tirx.BufferLoad(tirx.decl_buffer((4,), "float32"), [i0])
    return type(load), type(tirx.Ramp(i0, i1, 4))


def permute_codebook_lookups(func):
    """``func`` with every 16-lane gather from a 16/32-entry ``codebook`` buffer made a permute.

    Returns (new function, number of lookups rewritten).
    """
    import tvm_ffi
    from tvm import tirx

    load_t, ramp_t = _types()
    count = 0

    def rewrite(load):
        nonlocal count
        src = load.source
        name = str(getattr(src, "name", ""))
        ty = str(load.ty)
        if not (name == CODEBOOK_BUFFER or name.startswith(CODEBOOK_BUFFER + "_")) or not ty.startswith("float32x"):
            return load
        lanes = int(ty[len("float32x"):])
        if lanes % 16:
            return load
        (idx,) = load.indices
        if isinstance(idx, ramp_t):  # a contiguous load, not a lookup
            return load
        try:
            entries = int(src.shape[0])
        except (AttributeError, TypeError, IndexError):
            return load
        if entries not in _PERMUTES:
            return load

        def half(start):
            return tirx.BufferLoad(src, [tirx.Ramp(tirx.IntImm("int32", start), tirx.IntImm("int32", 1), 16)])

        def permute(ix):
            if entries == 16:
                return tirx.call_llvm_pure_intrin("float32x16", _PERMUTES[16], half(0), ix)
            return tirx.call_llvm_pure_intrin("float32x16", _PERMUTES[32], half(0), ix, half(16))

        count += 1
        if lanes == 16:
            return permute(idx)
        # Wider vectors (ob = 32, 64 as lanes): one permute per 16 lanes, concatenated.
        parts = [permute(tirx.Shuffle([idx], [tirx.IntImm("int32", j) for j in range(k, k + 16)]))
                 for k in range(0, lanes, 16)]
        return tirx.Shuffle(parts, [tirx.IntImm("int32", j) for j in range(lanes)])

    body = tvm_ffi.structural_map(func.body, [(load_t, rewrite)])
    return (func.with_body(body) if count else func), count


def _register():
    global _registered
    if _registered:
        return
    import tvm
    from tvm import tirx
    from tvm.tirx import compilation_pipeline as tp

    def pipeline():
        base, finalize_host, finalize_device = tp.get_tir_pipeline("s_tir")

        @tvm.transform.module_pass(opt_level=0, name="tvmq.PermuteCodebookLookups")
        def run(mod, _ctx):
            mod = base(mod)
            for gv, f in list(mod.functions.items()):
                if isinstance(f, tirx.PrimFunc):
                    mod[gv] = permute_codebook_lookups(f)[0]
            return mod

        return run, finalize_host, finalize_device

    tp.PIPELINE_MAP[PIPELINE] = pipeline
    _registered = True


def pipeline_for(target) -> str:
    """The TIR pipeline name for a ``tvm.target.Target``: tvmq's on x86 with AVX-512F."""
    import tvm

    has = tvm.get_global_func("target.target_has_feature")
    try:
        x86_avx512 = bool(has("avx512f", target))
    except Exception:  # noqa: BLE001 - not a CPU target with features
        x86_avx512 = False
    if x86_avx512:
        _register()
        return PIPELINE
    return "default"


def compile_mod(mod, target):
    """``tvm.compile`` with tvmq's pipeline for ``target`` (a ``tvm.target.Target`` or its JSON dict)."""
    import tvm

    if not isinstance(target, tvm.target.Target):
        target = tvm.target.Target(target)
    return tvm.compile(mod, target=target, tir_pipeline=pipeline_for(target))
