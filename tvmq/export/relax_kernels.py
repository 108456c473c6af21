"""Relax side of a model export: import with TVM's ONNX frontend, then put tvmq's kernels in place of
``nn.conv2d`` (``call_tir`` with the data re-laid out around it), or a decoded-weight fallback.

Across the network (``build_relax``):

* a conv2d followed by its bias add, a residual add (the other operand, computed before the conv,
  read in the output's layout) and/or ReLU (``Clip(0, x)``: ReLU capped at x)
  becomes one kernel call with that epilogue built in (``fuse_epilogues`` finds the chains; the kernel's task,
  and so its tuning records, stay those of the plain convolution: the epilogue is an operator
  override that the template places with the same config);
* the blocked layout (NCHWc) of a kernel's output is kept for every consumer that can take it: a
  tvmq kernel whose input block equals the output block, and the layout-agnostic glue between
  (ReLU, elementwise add, max pooling, concat on channels). The NCHW forms left unused are removed
  by dead-code elimination, so a layout change remains only where an operator needs NCHW
  (``kept_forms.py`` holds those forms; ``joint_layouts.py`` lets a kernel pick, among its records,
  one that reads the block its producer wrote).
"""

from __future__ import annotations

import sys

import numpy as np

from ..errors import TvmqError
from .. import variants
from ..variants import QUANTIZATIONS
from ..build.from_log import choice_for, say
from .joint_layouts import Want, best_fitting, data_block, pick
from ..templates import template_module
from .kept_forms import KeptForms
from .kernel_shapes import KernelShapes, _ExportTask, model_variant_params
from .layers import function_entry, scheduled_function
from .fusion import fuse_epilogues  # noqa: F401  (part of this module's interface)
from .layouts import BLOCKED, _reblock, _to_layout, divides, in_layout, in_out_layout
import warnings
from .grouped import dry_workload
from .grouped import grouped_call
from .gathered import gathered_call, gathered_workload
from .grouped_read import QUANTIZE as GROUP_READ, grouped_read_call, grouped_read_workload
from .kernel_args import layer_inputs
from .relax_rewrites import cheap_power


def relax_import(model, shapes: dict):
    from tvm.relax.frontend.onnx import from_onnx  # lazy: heavy (TVM)


    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return from_onnx(model, shape_dict=shapes, keep_params_in_input=False)
    except Exception as e:  # noqa: BLE001  (the frontend raises anything)
        msg = [ln for ln in str(e).strip().splitlines() if ln.strip()]
        raise TvmqError(f"TVM's ONNX frontend cannot import the model: {msg[-1][:300] if msg else type(e).__name__}") \
            from None


class _Plan(KeptForms, KernelShapes):
    """Decides, per conv2d call, kernel or fallback; collects kernels, new inputs and their arrays."""

    def __init__(self, layers, opts, target, records):
        self.by_safe = {L.safe: L for L in layers}
        self.opts = opts
        self.target = target
        self.records = records
        self.kernels: dict[tuple, tuple] = {}  # key -> (name, gv, entry)
        self.funcs: dict[str, object] = {}
        self.entries: list[dict] = []
        self.inputs: list[tuple] = []  # (Var, array, role, layer)
        self.layer_rows: list[dict] = []
        self.dry = False  # only collect the kernels' workloads (model_workloads)
        self.workloads: dict[str, object] = {}
        self.counts: dict[str, int] = {}  # workload key -> kernel calls in the network (groups count each)
        KeptForms.__init__(self)

    def new_input(self, name, arr, role, layer):
        from tvm import relax  # lazy: heavy (TVM)

        v = relax.Var(name, relax.TensorType(list(arr.shape), str(arr.dtype)))
        self.inputs.append((v, np.ascontiguousarray(arr), role, layer))
        return v

    def kernel(self, wl, bb, epi: dict | None = None, want: Want | None = None, extra: dict | None = None,
               fits=None):
        """(op, GlobalVar, function name, entry) of the tuned kernel for ``wl`` (deduplicated).

        ``epi``: a fused epilogue (``bias``, ``residual``, ``relu``), built into the kernel as operator
        overrides; the task (and so the records it is built from) is the plain convolution's.
        ``want``: the blocks its neighbours hold, to choose among its records with them and to read the
        input in the block it is kept in (joint_layouts). ``extra``: more operator overrides (gather);
        ``fits(op_params)``: only records whose operator those overrides take."""

        variant, params = self._variant()
        task = _ExportTask.make(wl, variant, self.target, **params)
        overrides = {"epilogue": "dequant"} if variant in ("int8", "codebook_int8") else {}
        choice, rec, why = None, None, None
        if self.records:
            choice = choice_for(task, self.records)
            rec, why = (best_fitting(task, choice, fits), None) if fits is not None else pick(task, choice, want)
        if epi and rec is not None and rec.get("tuner") == "metaschedule":  # its schedule is not tvmq's template's
            raise TvmqError("its best record is MetaSchedule's, which takes no fused epilogue")
        if epi:
            overrides.update({**({"bias": True} if epi["bias"] is not None else {}),
                              **({"residual": "uint8" if epi.get("residual_q") else True}
                                 if epi.get("residual") is not None else {}),
                              **({"relu": epi["relu"]} if epi["relu"] else {}),
                              **({"quant_out": True} if epi.get("quant_out") else {})})
        if want is not None and (rec is None or rec.get("tuner") != "metaschedule"):
            space = task.space()
            cfg = space.complete(rec["config"]) if rec is not None else space.default
            xb = data_block(template_module(task.template).op_params(cfg), want.ib, wl.c_in)
            overrides.update({"data_block": xb} if xb else {})
        overrides.update(extra or {})
        overrides = overrides or None
        key = (wl.key, task.variant, repr(sorted(task.params.items())), repr(sorted((overrides or {}).items())),
               repr(sorted(rec["config"].items())) if rec is not None else None)
        if key in self.kernels:
            op, gv, name, entry = self.kernels[key]
            if wl.name not in entry["layers"]:
                entry["layers"].append(wl.name)
            return op, gv, name, entry
        if rec is not None:  # else scheduled_function chooses (none) and says why
            say(choice, "tvmq export")
        none_fits = fits is not None and rec is None  # the default schedule, not a record this kernel cannot take
        op, func, cfg, rec, kw = scheduled_function(task, [] if none_fits else self.records, warn=not none_fits,
                                                    op_overrides=overrides, record=rec)
        name = f"k{len(self.kernels):02d}_{wl.name}__{task.variant}"
        func = func.with_attr("global_symbol", name).with_attr("op_pattern", 8).with_attr("tir.is_scheduled", True)
        gv = bb.add_func(func, name)
        entry = function_entry(name, task, op, cfg, rec, kw)
        entry["layers"] = [wl.name]
        if overrides:
            entry["epilogue_override"] = overrides
        if why:
            entry["joint_layout"] = why
        self.kernels[key] = (op, gv, name, entry)
        self.entries.append(entry)
        return op, gv, name, entry

    def rewrite(self, bb, call, L, epi: dict | None = None):
        """The conv2d ``call`` on tvmq kernels: (NCHW output, whether ``epi`` was fused into the kernel)."""
        from tvm import relax  # lazy: heavy (TVM)

        R = relax.op
        if self.dry and (gwl := gathered_workload(call, L) if self.opts.quantize == "none" else
                         grouped_read_workload(call, L) if self.opts.quantize in GROUP_READ else None) is not None:
            self.workloads.setdefault(gwl.key, gwl)
            self.counts[gwl.key] = self.counts.get(gwl.key, 0) + 1
            return call, False
        done = gathered_call(self, bb, call, L, epi) or grouped_read_call(self, bb, call, L, epi)
        if done is not None:
            return done
        wl, groups = self._pieces(call, L)
        epi0 = epi
        if epi:
            epi = {**epi, "quant_out": self.quant_out(epi)}
            if wl is not None and (groups != 1 or wl.c_out != L.w.shape[0]):  # a sliced or split output
                epi["quant_out"] = None
            if epi["bias"] is None and epi["residual"] is None and not epi["relu"] and epi["quant_out"] is None:
                epi = None
        if self.dry:
            if wl is None:  # a grouped/depthwise layer: its grouped kernel's workload (one call)
                wl, groups = dry_workload(self, call, L), 1
            if wl is not None:
                self.workloads.setdefault(wl.key, wl)
                self.counts[wl.key] = self.counts.get(wl.key, 0) + (groups if isinstance(groups, int) and groups > 0 else 1)
            return call, False
        if epi and epi.get("residual") is not None and (wl is None or groups != 1 or wl.c_out != L.w.shape[0]):
            return self.rewrite(bb, call, L, None)  # one kernel call on the whole output only: nothing fused
        if wl is None:
            # -- grouped/depthwise hook (tvmq/export/grouped.py): a grouped kernel, else the fallback --
            done = grouped_call(self, bb, call, L, epi)
            if done is not None:
                return done
            # -- end grouped hook --
            return self.fallback(bb, call, L, groups), False
        fuse = {k: epi.get(k) for k in ("bias", "residual", "relu", "quant_out")} if epi else None
        if fuse and fuse["residual"] is not None and not epi.get("float_residual"):
            q = self.quantized.get(fuse["residual"])  # the residual as a kernel wrote it: uint8
            fuse["residual_q"] = q[3] if q is not None else None
        try:
            op, gv, fname, entry = self.kernel(wl, bb, fuse, self.want(call.args[0], L, wl, groups, fuse))
        except TvmqError as e:
            if fuse and (fuse["quant_out"] or fuse.get("residual_q")):
                # a kernel without uint8 output or residual (AMX): quantize pass and float residual stay
                return self.rewrite(bb, call, L, {**epi0, "quant_for": None, "float_residual": True})
            if not fuse:
                return self.fallback(bb, call, L, str(e)), False
            print(f"tvmq export: note: layer {L.node!r}: no fused epilogue ({e}); bias/add/ReLU stay Relax ops",
                  file=sys.stderr)
            return self.rewrite(bb, call, L, None)
        x = call.args[0]
        o = L.w.shape[0]
        og = o // groups
        # the input as the previous kernel left it (NCHWc with the block this kernel reads): no layout change
        keep, u8 = self.input_source(x, L)
        if not (groups == 1 and op.layout in BLOCKED and wl.c_in == L.w.shape[1]):
            keep = None
        ib = op.params.get("data_block") or op.params.get("ib")  # the block the kernel reads its data in
        if keep is not None and not divides(keep[1], ib):
            keep = None
        x = self.read_input(bb, x, L, keep, u8)
        if keep is not None and keep[1] != ib:  # NCHW{ob}c -> NCHW{ib}c in one transpose (after the quantize)
            x = _reblock(bb, x, keep[1], ib)
        xs = [x] if groups == 1 else [bb.emit(relax.TupleGetItem(bb.emit(R.split(x, groups, axis=1)), g))
                                      for g in range(groups)]
        if wl.c_in != L.w.shape[1]:  # padded input channels (_padded_workload): their weights are 0
            # uint8 data pads with the zero point: (x - zp) * w is then 0 for any w (codebook entry 0 too)
            fill = float(L.act["zero_point"]) if QUANTIZATIONS[self.opts.quantize].integer_activations else 0.0
            xs = [bb.emit(R.nn.pad(xg, [0, 0, 0, wl.c_in - L.w.shape[1], 0, 0, 0, 0], pad_value=fill)) for xg in xs]
        outs, pieces = [], []
        for g in range(groups):
            y, names = self._call(bb, op, gv, xs[g], L, g if groups > 1 else None, g * og, (g + 1) * og, wl.c_out,
                                  fuse, laid_out=keep is not None)
            if wl.c_out != og:
                full, y = y, bb.emit(R.strided_slice(y, axes=[1], begin=[0], end=[og]))
                if groups == 1 and full in self.padded:
                    self.padded[y] = self.padded[full]
            outs.append(y)
            pieces.append(dict(kernel=fname, out_channels=[g * og, (g + 1) * og], c_out_padded=wl.c_out,
                               inputs=names))
        y = outs[0] if groups == 1 else bb.emit(R.concat(outs, axis=1))
        fused = {"bias": fuse["bias"] is not None, "relu": fuse["relu"],
                 **({"residual": "uint8" if fuse.get("residual_q") else True}
                    if fuse["residual"] is not None else {}),
                 **({"quant_out": True} if fuse["quant_out"] else {})} if fuse else None
        self.layer_rows.append(dict(node=L.node, weight=L.weight, workload=wl.to_dict(), kernel=fname,
                                    schedule=entry["schedule"], layout=op.layout, groups=groups, pieces=pieces,
                                    fused_epilogue=fused,
                                    input_layout="converted" if keep is None else "kept" if keep[1] == ib else
                                    f"reblocked {keep[1]}c->{ib}c",
                                    **({"input_quantized_by": "the previous kernel"} if u8 is not None else {}),
                                    **L.report, **({"activation": L.act} if L.act else {})))
        return y, bool(fuse)

    def _call(self, bb, op, gv, x, L, g, lo, hi, c_pad, fuse=None, laid_out=False):
        """One kernel call on ``x`` (NCHW, or already in the kernel's layout with ``laid_out``) for output
        channels lo:hi (padded to c_pad); returns the NCHW output (its blocked form goes to ``blocked``)."""
        from tvm import relax  # lazy: heavy (TVM)


        layout, ob = op.layout, op.params["ob"]
        ib = op.params.get("data_block") or op.params["ib"]
        tag = L.safe if g is None else f"{L.safe}_g{g}"
        names = {}
        args = [x if laid_out else _to_layout(bb, x, layout, ib)]
        for key, arr, role in layer_inputs(self.opts.quantize, self.opts.bits, op, L, lo, hi, c_pad, fuse):
            if arr is None:  # the fused residual: the add's other operand, read in the output's layout
                if fuse.get("residual_q"):  # as uint8, where the kernel that made it wrote that
                    yq, lay, qb, _ = self.quantized[fuse["residual"]]
                    args.append(in_layout(bb, yq, lay, qb, layout, ob, c_pad))
                else:
                    args.append(in_out_layout(bb, fuse["residual"], self.blocked, layout, ob))
                continue
            v = self.new_input(f"{tag}_{key}", arr, role, L.node)
            names[key] = v.name
            args.append(v)
        oa = op.out_arg
        want = [a.to_dict() for a in op.args[:-1]]
        got = [{"name": w["name"], "shape": [int(v) for v in a.ty.shape], "dtype": str(a.ty.dtype)}
               for w, a in zip(want, args)]
        if got != want:
            raise TvmqError(f"internal: layer {L.node!r}: kernel arguments {got} != {want}")
        y = bb.emit(relax.call_tir(gv, relax.Tuple(args), relax.TensorType(list(oa.shape), oa.dtype)))
        return self.output(bb, y, layout, ob, c_pad, fuse.get("quant_out") if fuse else None,
                           g is None and c_pad == hi - lo), names

    def fallback(self, bb, call, L, why):
        """Relax's own conv2d, its weight decoded from the stored form inside the graph (at run time)."""
        from tvm import relax  # lazy: heavy (TVM)

        R = relax.op
        q = self.opts.quantize
        o = L.w.shape[0]
        if q == "none":
            w = self.new_input(f"{L.safe}_w", L.quant["weight"], "float weights (Relax conv2d)", L.node)
        elif q in ("kmeans", "kmeans_int8"):
            idx = self.new_input(f"{L.safe}_idx", L.quant["indices"], f"{self.opts.bits}-bit codebook indices, OIHW "
                                 "(Relax conv2d)", L.node)
            cb = self.new_input(f"{L.safe}_cb", L.quant["codebook"], "codebook", L.node)
            if q == "kmeans_int8":  # float weights from the int8 table and its scale, as in the kernel
                sc = self.new_input(f"{L.safe}_wscale", L.quant["w_scale"][:1], "codebook scale", L.node)
                cb = bb.emit(R.multiply(R.astype(cb, "float32"), sc))
            w = bb.emit(R.take(cb, R.astype(idx, "int32"), axis=0, mode="clip"))
        else:
            qv = self.new_input(f"{L.safe}_q", L.quant["q"], "int8 weights, OIHW (Relax conv2d)", L.node)
            sc = self.new_input(f"{L.safe}_wscale", L.quant["w_scale"].reshape(o, 1, 1, 1), "weight scales", L.node)
            w = bb.emit(R.multiply(R.astype(qv, "float32"), sc))
        a = call.attrs
        y = bb.emit(R.nn.conv2d(call.args[0], w, strides=a.strides, padding=a.padding, dilation=a.dilation,
                                groups=a.groups, data_layout="NCHW", kernel_layout="OIHW", out_layout="NCHW"))
        print(f"tvmq export: note: layer {L.node!r} has no tvmq kernel ({why}); it runs as Relax conv2d on weights "
              f"decoded at run time", file=sys.stderr)
        self.layer_rows.append(dict(node=L.node, weight=L.weight, kernel=None, fallback=why, **L.report))
        return y


def build_relax(mod, layers, opts, target, records, dry: bool = False, arrays: dict | None = None,
                fuse: bool = True):
    """Replace the conv2d calls that read a quantized weight input; returns (module, plan, kept inputs).

    ``arrays``: the graph inputs' arrays (name -> (shape, array)), for the biases fused into kernels;
    ``fuse``: fuse bias/ReLU into the kernels and keep blocked layouts between them."""
    import tvm  # lazy: heavy (TVM)
    from tvm import relax  # lazy: heavy (TVM)

    plan = _Plan(layers, opts, target, records)
    plan.dry = dry
    conv_op = tvm.ir.Op.get("relax.nn.conv2d")
    main = mod["main"]
    res_ok = variants.get(model_variant_params(opts)[0]).op in ("float", "int8", "codebook", "codebook_int8")  # residual epilogues
    def reads_u8(c):  # a tvmq kernel (direct or grouped) reads this conv's input, not Relax's conv2d
        L2 = plan.by_safe[c.args[1].name]
        return plan._pieces(c, L2)[0] is not None or dry_workload(plan, c, L2) is not None

    ia = QUANTIZATIONS[opts.quantize].integer_activations
    groups, absorbed = fuse_epilogues(main, plan.by_safe, arrays or {}, res_ok, reads_u8 if ia else None) if fuse and not dry \
        else ({}, {})
    done: dict = {}  # conv var -> (its NCHW output, fused)

    @relax.expr_functor.mutator
    class Swap(relax.PyExprMutator):
        def _bind(self, var, value):
            if isinstance(value, relax.Var) and isinstance(var, relax.DataflowVar):
                new = value
            elif isinstance(var, relax.DataflowVar):
                new = self.builder_.emit(value, name_hint=var.name)
            else:
                new = self.builder_.emit_output(value, name_hint=var.name)
            self.set_var_remap(var, new)
            return new

        def _residual(self, epi):
            """``epi`` with its residual as rewritten: an earlier kernel's output where it ends that kernel's
            fused chain (bound later in the graph), else None when that kernel took no epilogue."""
            r = epi["residual"]
            if r not in absorbed:
                return {**epi, "residual": self.visit_expr(r)}
            y, fused = done[absorbed[r]]
            return {**epi, "residual": y} if fused and groups[absorbed[r]]["final"].same_as(r) else None

        def visit_var_binding_(self, binding):
            var = binding.var
            if var in absorbed:
                y, fused = done[absorbed[var]]
                if fused:  # part of the kernel now; the chain's last var is the kernel's output
                    if groups[absorbed[var]]["final"].same_as(var):
                        self._bind(var, y)
                    return
            value = self.visit_expr(binding.value)
            if (isinstance(value, relax.Call) and value.op.same_as(conv_op) and isinstance(value.args[1], relax.Var)
                    and value.args[1].name in plan.by_safe):
                epi = groups.get(var)
                if epi is not None and epi["residual"] is not None:
                    epi = self._residual(epi)
                y, fused = plan.rewrite(self.builder_, value, plan.by_safe[value.args[1].name], epi)
                done[var] = (y, fused)
                self._bind(var, y)
                return
            if not dry:
                value = cheap_power(self.builder_, value)
                if fuse:
                    pooled = plan.global_pool(self.builder_, value)
                    value = value if pooled is None else pooled
            new = self._bind(var, value)
            if fuse and not dry:
                plan.propagate(self.builder_, value, new)

    sw = Swap(mod)
    body = sw.visit_expr(main).body
    if dry:
        return None, plan, []
    swapped = {L.weight for L in layers} - {r["weight"] for r in plan.layer_rows}
    if swapped:
        raise TvmqError(f"internal: conv weight(s) {sorted(swapped)} were not found as conv2d inputs after import")
    free = {v.name for v in relax.analysis.free_vars(body)}
    data = main.params[0]
    old = [v for v in main.params[1:] if v.name in free]
    new = [v for v, *_ in plan.inputs]
    params = [data, *old, *new]
    fn = relax.Function(params, body, main.ret_ty if hasattr(main, "ret_ty") else None, is_pure=True,
                        attrs=main.attrs).with_attr("num_input", len(params))
    if "params" in fn.attrs:
        fn = fn.without_attr("params")
    out = sw.builder_.get()
    out["main"] = fn
    out = relax.transform.DeadCodeElimination(["main"])(out)  # unused layout changes and blocked twins
    return out, plan, old
