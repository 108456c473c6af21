"""Where an exported model's time goes: each tvmq kernel's and each glue operator's share.

TVM 0.27's Relax VM has no profiler any more (``tvm.runtime.profiling`` and ``profile=True`` are
gone), but it keeps ``VirtualMachine.set_instrument``: a function called before and after every
Call instruction of the VM with the callee's symbol and arguments. ``profile_export`` runs the
exported network ``runs`` times with an instrument that reads a clock on each side of every call,
takes each call's interquartile mean over the runs (robust to preemptions, and its sum is close to
the mean of the runs' sums), subtracts the instrument's own cost (the median time of
``vm.builtin.null_value``, a call that does nothing), and groups the calls:

* by function: each tvmq kernel (``kNN_layer__variant``, the layers it serves from the manifest),
  each glue PrimFunc that Relax legalized (``transpose1``, ``add``, ``relu``, ``max_pool2d``, ...);
* by kind (``KINDS``), with ``classify``.

The VM's builtins (``vm.builtin.alloc_tensor``, shape checks, reshapes that are views) are not
timed one by one: each is a fraction of a microsecond, less than the instrument costs. The network
is also timed without the instrument (``time_evaluator``, one sample of at least ``sample_ms``
before each instrumented run, so that both see the same load: on a shared machine it changes from
second to second); what that time has beyond the sum of the timed calls is the VM's own work: the
builtins and the interpretation between calls ("VM: builtins, allocation, dispatch"). Shares are
of max(network time, sum of calls): they sum to 100%.

On a machine that other work shares, the network's time and the calls' part grow apart (measured:
24.1 against 24.0 ms for MobileNet-v2 on a quiet 2-core VM, 35 against 27 ms at load average 3-4),
and the VM row holds that interference; the load average is in the result and the table says so.

Per-call clock reads cost about 0.3-1 us each through the Python callback; on a network of
microsecond calls (the digits CNN) that is a visible part even after the correction, on real-size
networks (milliseconds per convolution) it is noise.
"""

from __future__ import annotations

import os
import re
import time

import numpy as np

from ..machine import available_cores
from ..export import runtime as RT

KINDS = (
    "tvmq kernel", "Relax conv2d (no tvmq kernel)", "Relax matmul", "quantize activations", "layout change",
    "pooling", "concat", "softmax", "bias add", "residual add", "add", "activation", "reshape / slice / copy",
    "other glue", "VM",
)
VM_ROW = "VM: builtins, allocation, dispatch"

# operator names inside a PrimFunc's symbol (Relax names a legalized op after itself, a fused one
# ``fused_op1_op2...``, each with a number when repeated): compounds first, so "_" can split the rest
_COMPOUNDS = (("layout_transform", "layouttransform"), ("adaptive_avg_pool", "adaptiveavgpool"),
              ("max_pool", "maxpool"), ("avg_pool", "avgpool"), ("strided_slice", "stridedslice"),
              ("expand_dims", "expanddims"), ("broadcast_to", "broadcastto"), ("tir_", ""))
_OP_KIND = (  # (pattern on one op, kind)
    (r"conv[123]d(transpose)?", "Relax conv2d (no tvmq kernel)"),
    (r"matmul|dense", "Relax matmul"),
    (r"round", "quantize activations"),
    (r"layouttransform|transpose|permute(dims)?", "layout change"),
    (r".*pool.*|mean", "pooling"),
    (r"concat(enate)?", "concat"),
    (r"softmax|logsoftmax", "softmax"),
    (r"add", "add"),
    (r"relu|clip|sigmoid|tanh|leakyrelu|gelu|hardswish|maximum|minimum", "activation"),
    (r"reshape|squeeze|unsqueeze|flatten|copy|stridedslice|slice|split|take|expanddims|broadcastto|identity",
     "reshape / slice / copy"),
)
_QUANT_OPS = {"multiply", "round", "add", "clip", "cast"}  # astype(clip(round(x * 1/s) + zp, 0, 255), uint8)


def ops_of(symbol: str) -> list[str]:
    """The operators a PrimFunc's symbol names: ``fused_transpose1_reshape1_maximum_minimum`` ->
    [transpose, reshape, maximum, minimum]."""
    name = symbol.lower()
    name = name[len("fused_"):] if name.startswith("fused_") else name
    for a, b in _COMPOUNDS:
        name = name.replace(a, b)
    return [re.sub(r"\d+$", "", t) for t in name.split("_") if t]


def _op_kind(op: str) -> str | None:
    return next((k for pat, k in _OP_KIND if re.fullmatch(pat, op)), None)


def classify(symbol: str, shapes: list, kernels=frozenset()) -> str:
    """The kind of a VM call to ``symbol`` with argument ``shapes`` (None for non-tensors): one of
    ``KINDS``, or for a fused glue function the kinds of its operators joined by " + " (a
    transpose fused with ReLU6 is "layout change + activation"). A Relax conv2d or matmul absorbs
    its fused epilogue; quantization absorbs its multiply, add, clip and cast; reshapes count only
    alone (they are views or folded into the next op)."""
    if symbol in kernels:
        return "tvmq kernel"
    if symbol.startswith("vm.") or symbol.startswith("relax."):
        return "VM"
    ops = ops_of(symbol)
    kinds = [_op_kind(o) for o in ops]
    for k in ("Relax conv2d (no tvmq kernel)", "Relax matmul"):
        if k in kinds:
            return k
    if "quantize activations" in kinds:
        kinds = [k for o, k in zip(ops, kinds) if o not in _QUANT_OPS] + ["quantize activations"]
    if kinds == ["add"]:
        # a bias broadcasts ([1, C, 1, 1] onto [N, C, H, W]); a residual add has equal feature maps
        # (on a 1x1 map, a dense layer's output, equal shapes are taken for a bias)
        ins = [s for s in shapes[:2] if s is not None]
        equal = len(ins) == 2 and ins[0] == ins[1] and int(np.prod(ins[0][2:] or (1,))) > 1
        return "residual add" if equal else "bias add"
    found = {k for k in kinds if k is not None}
    if not found:
        return "other glue"
    if found != {"reshape / slice / copy"}:
        found.discard("reshape / slice / copy")
    return " + ".join(k for k in KINDS if k in found)


def _quantize_chains(syms: list[str]) -> set[int]:
    """Indices (into the timed calls, in order) of the int8 export's activation quantization,
    ``astype(clip(round(x * 1/s) + zp, 0, 255), uint8)``: the calls around each ``round``."""
    out = set()
    base = [re.sub(r"^tir_|\d+$", "", s.lower()) for s in syms]
    for i, b in enumerate(base):
        if b != "round":
            continue
        out.add(i)
        if i > 0 and base[i - 1] == "multiply":
            out.add(i - 1)
        j = i + 1
        while j < len(base) and base[j] in ("add", "clip", "cast", "astype"):
            out.add(j)
            if base[j] in ("cast", "astype"):
                break
            j += 1
    return out


def _trimmed_mean(a: np.ndarray, cut: float = 0.25) -> np.ndarray:
    """Mean over axis 0 without the lowest and highest ``cut`` of the samples (preemptions)."""
    a = np.sort(a, axis=0)
    k = int(len(a) * cut)
    return a[k:len(a) - k].mean(axis=0)


def _shape(a):
    try:
        return tuple(int(d) for d in a.shape)
    except Exception:  # noqa: BLE001  (shapes, strings, storage objects, None)
        return None


def profile_export(export_dir, runs: int = 20, seed: int = 0, sample_ms: int = 20) -> dict:
    """Per-call times of an exported model (see the module doc), as a JSON-able dict."""

    ex = RT.open_export(export_dir)
    mr = RT.ModelRunner(ex)
    x = RT.random_input(mr.info, seed)
    xt = ex.tensor(x)
    kernels = {f["name"]: f for f in ex.functions}
    ref = mr.vm["main"](xt, *mr.params).numpy()

    calls: list[tuple[str, list]] = []  # (symbol, shapes), in call order, from the first run
    times: list[list[int]] = []  # ns per call index, one list per run
    state = {"t": 0, "first": True, "run": None}

    def instrument(func, symbol, before, ret, *args):
        if before:
            if state["first"]:
                calls.append((str(symbol), [_shape(a) for a in args]))
            state["t"] = time.perf_counter_ns()
        else:
            state["run"].append(time.perf_counter_ns() - state["t"])
        return 0

    # the network without the instrument, one time_evaluator sample (>= sample_ms of runs) before each
    # instrumented run: both see the same load (on a shared machine it changes from second to second)
    mr.vm.set_input("main", xt, *mr.params)
    fe = mr.vm.time_evaluator("invoke_stateful", ex.dev, number=1, repeat=1, min_repeat_ms=sample_ms)
    net = []
    try:
        for r in range(runs + 1):  # the first run lists the calls and warms up
            mr.vm.set_instrument(None)
            net.append(float(fe("main").results[0]))
            mr.vm.set_instrument(instrument)
            state["run"] = []
            mr.vm["main"](xt, *mr.params)
            if state["first"]:
                state["first"] = False
            else:
                times.append(state["run"])
    finally:
        mr.vm.set_instrument(None)
    out_after = mr.vm["main"](xt, *mr.params).numpy()
    total_ms = float(_trimmed_mean(np.asarray(net[1:]))) * 1e3
    if any(len(t) != len(calls) for t in times):
        raise RuntimeError("the VM made a different number of calls from one run to the next")
    # interquartile means, not medians: a sum of medians is not the median of the sums (a load that
    # hits some calls of every run would vanish from the calls and stay in the network's time)
    med = _trimmed_mean(np.asarray(times, dtype=np.float64)) / 1e6  # ms per call index
    nulls = [m for (s, _), m in zip(calls, np.median(np.asarray(times, np.float64), axis=0) / 1e6)
             if s == "vm.builtin.null_value"]
    overhead_ms = float(np.median(nulls)) if nulls else 0.0
    med = np.maximum(med - overhead_ms, 0.0)

    funcs: dict[tuple, dict] = {}  # (symbol, kind) -> row
    builtins = sum(classify(sym, [], kernels) == "VM" for sym, _ in calls)
    timed = [(sym, shapes, ms) for (sym, shapes), ms in zip(calls, med) if classify(sym, [], kernels) != "VM"]
    quant = _quantize_chains([sym for sym, _, _ in timed])
    for i, (sym, shapes, ms) in enumerate(timed):
        kind = "quantize activations" if i in quant else classify(sym, shapes, kernels)
        # one PrimFunc used two ways (an ``add`` for a bias and a zero point) is two rows
        f = funcs.setdefault((sym, kind), {"function": sym, "kind": kind, "calls": 0, "ms": 0.0})
        f["calls"] += 1
        f["ms"] += float(ms)
        if kind == "tvmq kernel":
            e = kernels[sym]
            f.update(layers=e.get("layers", []), variant=e["variant"], schedule=e["schedule"])
    sum_ms = float(sum(f["ms"] for f in funcs.values()))
    between = total_ms - sum_ms
    if between > 0:
        funcs[(VM_ROW, "VM")] = {"function": VM_ROW, "kind": "VM", "calls": builtins, "ms": between}
    denom = max(total_ms, sum_ms) or 1.0
    rows = sorted(funcs.values(), key=lambda f: -f["ms"])
    for f in rows:
        f["share"] = f["ms"] / denom
    kinds: dict[str, dict] = {}
    for f in rows:
        k = kinds.setdefault(f["kind"], {"kind": f["kind"], "functions": 0, "calls": 0, "ms": 0.0, "share": 0.0})
        k["functions"] += 1
        k["calls"] += f["calls"]
        k["ms"] += f["ms"]
        k["share"] += f["share"]
    res = {"export": str(export_dir), "model": mr.info["source"]["path"],
           "quantize": mr.info["quantize"]["method"], "bits": mr.info["quantize"]["bits"],
           "input_shape": list(x.shape), "runs": runs, "network_ms": total_ms, "sum_calls_ms": sum_ms,
           "instrument_overhead_us": overhead_ms * 1e3,
           "load_average": round(os.getloadavg()[0], 2), "cores": available_cores(), "vm_calls": len(calls),
           "builtin_calls": builtins,
           "output_unchanged": bool(np.array_equal(ref, out_after)),
           "functions": rows, "kinds": sorted(kinds.values(), key=lambda k: -k["ms"])}
    ex.close()
    return res
