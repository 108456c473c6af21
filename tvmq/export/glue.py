"""The glue around tvmq's kernels in a model export, scheduled: parallel and vectorized, not serial.

TVM 0.27's default Relax pipeline for ``llvm`` legalizes pooling, concat, add, layout changes,
softmax, LRN... into TIR loop nests and fuses neighbours (``FuseOps``/``FuseTIR``), but leaves them
unscheduled: one serial loop nest each (dlight's CPU rules cover only GEMV and reductions). Here,
after that same legalization and fusion, every PrimFunc that is not one of tvmq's (already scheduled)
kernels gets MetaSchedule's parallelize-vectorize rule without any tuning: producers that can be are
inlined into their consumers (the padding before a pooling), the root block is annotated with a
maximal parallel extent and vector width, and ``RewriteParallelVectorizeUnroll`` fuses each block's
outer spatial loops into one parallel loop and vectorizes the innermost spatial ones. Then the rest
of the default pipeline runs unchanged.
"""

from __future__ import annotations

import numpy as np

from ..build.lower import pipeline_for

MAX_PARALLEL = 256  # cap on a fused parallel loop's extent (MetaSchedule's jobs per core x cores)
MAX_VECTOR = 64     # cap on a vectorized loop's extent (elements)
MIN_PARALLEL = 1 << 14  # elements: smaller glue stays on one thread (waking the pool costs more; digits CNN)
GLUE_ATTR = "tvmq.glue_scheduled"


def _inline_producers(sch) -> None:
    """Inline every block that can be (injective producers such as padding) into its consumers."""
    from tvm import tirx  # noqa: F401  (loads the schedule's TIR types)

    changed = True
    while changed:
        changed = False
        root = sch.get_sblock("root")
        for blk in sch.get_child_blocks(root):
            if not sch.get_consumers(blk):  # an output
                continue
            try:
                sch.compute_inline(blk)
                changed = True
                break
            except Exception:  # noqa: BLE001  (TVM refuses: a reduction, or not inlinable)
                continue


def _channels_innermost(sch, parallel: bool) -> bool:
    """Schedule a function that is one reduction whose last spatial loop is the innermost axis of every
    buffer it touches (pooling in NCHW{c}c: the channel block, under the window's loops), maybe followed
    by elementwise blocks (an average's divide): that loop moves inside the reduction loops and is
    vectorized, the outer spatial loops are fused into one parallel loop (the tail's where it is large).
    MetaSchedule's rule leaves such a block scalar (Inception's 3x3 stride-1 max pools: 0.38 ms float,
    1.4 ms uint8 for 28x28x480; after this 0.02-0.06 ms). Returns whether it did."""
    from tvm import tirx  # lazy: heavy (TVM)

    blocks = sch.get_child_blocks(sch.get_sblock("root"))
    if not blocks:
        return False
    blk, tail = blocks[0], blocks[1:]  # tail: elementwise blocks after the reduction (an average's divide)
    if any(iv.iter_type != tirx.IterVar.DataPar for b in tail for iv in sch.get(b).iter_vars):
        return False
    block, loops = sch.get(blk), sch.get_loops(blk)
    it = list(block.iter_vars)
    k = 0
    while k < len(it) and it[len(it) - 1 - k].iter_type == tirx.IterVar.CommReduce:
        k += 1
    if not k or len(it) != len(loops) or len(it) == k or not 4 <= int(it[-k - 1].dom.extent) <= MAX_VECTOR:
        return False
    c = it[-k - 1].var
    if not all(len(r.region) and r.region[-1].min.same_as(c) for r in list(block.reads) + list(block.writes)):
        return False
    try:
        sch.reorder(*loops[-k:], loops[-k - 1])
        outer = loops[:-k - 1]
        if outer:
            fused = sch.fuse(*outer) if len(outer) > 1 else outer[0]
            if parallel:
                sch.parallel(fused)
        sch.vectorize(sch.get_loops(blk)[-1])  # the init stays in the block: a uniform branch, not split off
        for b in tail:
            bl = sch.get_loops(b)
            if len(bl) > 1 and parallel and int(np.prod([int(sch.get(x).extent) for x in bl])) >= MIN_PARALLEL:
                sch.parallel(sch.fuse(*bl[:-1]) if len(bl) > 2 else bl[0])
            if 4 <= int(sch.get(bl[-1]).extent) <= MAX_VECTOR:
                sch.vectorize(bl[-1])
    except Exception:  # noqa: BLE001  (TVM refuses: the caller schedules it the general way)
        return False
    return True


def _iterations(sch) -> int:
    """The largest iteration count of a block's loop nest under the root (0 where one is not constant)."""
    best = 0
    for blk in sch.get_child_blocks(sch.get_sblock("root")):
        n = 1
        for loop in sch.get_loops(blk):
            try:
                n *= int(sch.get(loop).extent)
            except TypeError:
                return 0
        best = max(best, n)
    return best


def vectorizable_rounding(func):
    """``func`` with ``nearbyint`` (Relax's legalized round: the quantize pass) as ``round``. Both round half
    to even, but TVM's vectorizer leaves a loop with ``nearbyint`` scalar, and LLVM then vectorizes the
    parallel loop around it with gathers and byte scatters (measured on Zen 5: 45 us for a 113k-element
    quantize, against 3.6 us with ``round``)."""
    import tvm  # lazy: heavy (TVM)
    import tvm_ffi  # lazy: heavy (TVM)
    from tvm import tirx  # lazy: heavy (TVM)

    nearby = tvm.ir.Op.get("tirx.nearbyint")
    call_t = type(tirx.call_intrin("float32", "tirx.round", tirx.FloatImm("float32", 0.0)))
    count = 0

    def swap(call):
        nonlocal count
        if not call.op.same_as(nearby):
            return call
        count += 1
        return tirx.call_intrin(str(call.ty), "tirx.round", *call.args)

    body = tvm_ffi.structural_map(func.body, [(call_t, swap)])
    return func.with_body(body) if count else func


def _vector_width(sch) -> int:
    """The vector width for MetaSchedule's rule: the innermost loop's extent where it is at most
    ``MAX_VECTOR``. A vector fused across loops indexes the buffers with divisions that LLVM cannot see
    through (int64 indices), so its loads become gathers (measured on Zen 5: a 113k-element quantize in
    NCHW16c, 48 us with 64-wide vectors across loops, 9 us with the 16-wide innermost loop)."""
    widths = []
    for blk in sch.get_child_blocks(sch.get_sblock("root")):
        loops = sch.get_loops(blk)
        try:
            widths.append(int(sch.get(loops[-1]).extent) if loops else MAX_VECTOR)
        except TypeError:
            widths.append(MAX_VECTOR)
    return min(widths + [MAX_VECTOR])


def schedule_glue_func(func, vectorize: bool = True, min_parallel: int = MIN_PARALLEL):
    """``func`` (an unscheduled PrimFunc) parallelized and/or vectorized, or None where that fails."""
    from tvm.s_tir import Schedule  # lazy: heavy (TVM)
    from tvm.s_tir.meta_schedule.postproc import RewriteParallelVectorizeUnroll  # lazy: heavy (TVM)

    func = vectorizable_rounding(func)
    try:
        sch = Schedule(func)
        _inline_producers(sch)
        root = sch.get_sblock("root")
        parallel = _iterations(sch) >= min_parallel
        if vectorize and _channels_innermost(sch, parallel):
            return sch.mod["main"].with_attr("tir.is_scheduled", True).with_attr(GLUE_ATTR, True)
        sch = Schedule(func)  # _channels_innermost may have changed it before refusing
        _inline_producers(sch)
        root = sch.get_sblock("root")
        if not (parallel or vectorize):
            return None
        if parallel:
            sch.annotate(root, "meta_schedule.parallel", MAX_PARALLEL)
        if vectorize:
            sch.annotate(root, "meta_schedule.vectorize", _vector_width(sch))
        if not RewriteParallelVectorizeUnroll().apply(sch):
            return None
        return sch.mod["main"].with_attr("tir.is_scheduled", True).with_attr(GLUE_ATTR, True)
    except Exception:  # noqa: BLE001  (a func the rule cannot take stays as it was)
        return None


def schedule_glue(mod, min_parallel: int = MIN_PARALLEL) -> tuple[object, int, int]:
    """Schedule every unscheduled PrimFunc of ``mod``: (module, scheduled, left as they were)."""
    from tvm import tirx  # lazy: heavy (TVM)

    done = left = 0
    for gv, f in list(mod.functions_items()):
        if not isinstance(f, tirx.PrimFunc) or (f.attrs is not None and f.attrs.get("tir.is_scheduled")):
            continue
        # a transpose's innermost loop reads with a stride: vectorized, it becomes gathers, slower than
        # scalar code (measured: SqueezeNet's last NCHW8c -> NCHW change 0.08 -> 0.36 ms on one core)
        new = schedule_glue_func(f, vectorize="transpose" not in gv.name_hint, min_parallel=min_parallel)
        if new is None:
            left += 1
            continue
        mod[gv] = new
        done += 1
    return mod, done, left


def compile_model(mod, target, schedule: bool = True):
    """``tvm.compile`` of a model's Relax module (tvmq's TIR pipeline) with its glue scheduled;
    (executable, glue stats)."""
    import tvm  # lazy: heavy (TVM)
    from tvm.relax.backend.cpu_generic import pipeline as cpu  # the llvm pipeline, in its stages


    if not isinstance(target, tvm.target.Target):
        target = tvm.target.Target(target)
    with target:
        mod = tvm.transform.Sequential(cpu.library_dispatch_passes(target)
                                       + cpu.legalize_passes(target))(mod)
    mod, done, left = schedule_glue(mod) if schedule else (mod, 0, 0)
    rest = tvm.transform.Sequential(cpu.dataflow_lower_passes(target)
                                    + cpu.finalize_passes(target))
    with target:
        ex = tvm.compile(mod, target=target, relax_pipeline=rest, tir_pipeline=pipeline_for(target))
    return ex, {"scheduled": done, "unscheduled": left}


def glue_funcs(mod, min_parallel: int = MIN_PARALLEL) -> dict:
    """name -> PrimFunc of the glue that ``compile_model`` schedules (after legalization and fusion)."""
    import tvm  # lazy: heavy (TVM)
    from tvm import tirx  # lazy: heavy (TVM)
    from tvm.relax.backend.cpu_generic import pipeline as cpu  # lazy: heavy (TVM)

    target = tvm.target.Target("llvm")
    with target:
        mod = tvm.transform.Sequential(cpu.legalize_passes(target))(mod)
    mod, _, _ = schedule_glue(mod, min_parallel)
    return {gv.name_hint: f for gv, f in mod.functions_items()
            if isinstance(f, tirx.PrimFunc) and f.attrs is not None and f.attrs.get(GLUE_ATTR)}
