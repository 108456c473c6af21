"""Which Relax bindings of an imported model fuse into a tvmq kernel's epilogue: a conv2d followed
(only) by its bias add, a residual add and/or a ReLU, or ONNX ``Clip(x, 0, hi)`` as a ReLU capped at hi."""

from __future__ import annotations

import re

import numpy as np


def _op_is(expr, name: str) -> bool:
    from tvm import relax  # lazy: heavy (TVM)

    return isinstance(expr, relax.Call) and isinstance(expr.op, __import__("tvm").ir.Op) and expr.op.name == name


def _const_float(e):
    try:
        return float(e.value)
    except (AttributeError, TypeError, ValueError):
        return None


def _te_bound(value: dict, call, func: str, x):
    """The frontend's Clip (opset 11+) is ``call_tir(maximum|minimum, (x, b))`` with ``b`` bound to
    ``where(isnan(c), inf, c)`` for a constant ``c``: that constant when ``call`` is such a call on ``x``."""
    from tvm import relax  # lazy: heavy (TVM)

    if not (_op_is(call, "relax.call_tir") and isinstance(call.args[0], relax.GlobalVar)
            and re.fullmatch(func + r"\d*", call.args[0].name_hint) and isinstance(call.args[1], relax.Tuple)
            and len(call.args[1].fields) == 2 and call.args[1].fields[0].same_as(x)):
        return None
    b = value.get(call.args[1].fields[1])
    return _const_scalar(b.args[2]) if b is not None and _op_is(b, "relax.where") else None


def _const_scalar(e):
    """The value of a scalar float constant expression, else None."""
    from tvm import ir  # lazy: heavy (TVM)

    if not isinstance(e, ir.expr.Constant):
        return None
    v = getattr(e, "value", None)
    if v is None:
        return None
    a = np.asarray(v.numpy() if hasattr(v, "numpy") else v)
    return float(a.reshape(-1)[0]) if a.size == 1 and a.dtype.kind == "f" else None


def _scalar_const(args):
    """(value, the other argument) of a binary op with one scalar float constant argument, else None."""
    for k in (0, 1):
        v = _const_scalar(args[k])
        if v is not None:
            return v, args[1 - k]
    return None


def _residual_of(add, cur, order: dict, before: int, final_of: dict):
    """The other operand of the elementwise ``add`` of ``cur`` when it can be a kernel's residual input:
    a float32 var of ``cur``'s shape computed before the conv (index ``before``; the kernel call takes
    its place), else None. The last var of an earlier fused chain counts as computed at its conv
    (``final_of``): the frontend may bind a bias add after the next conv (ResNet's downsample branch)."""
    from tvm import relax  # lazy: heavy (TVM)

    a0, a1 = add.args
    other = a1 if a0.same_as(cur) else a0
    if not isinstance(other, relax.Var) or other.same_as(cur) or order.get(final_of.get(other, other), -1) >= before:
        return None
    try:
        same = [int(v) for v in other.ty.shape] == [int(v) for v in cur.ty.shape]
    except (AttributeError, TypeError):  # a shape that is not static
        return None
    return other if same and str(other.ty.dtype) == "float32" else None


def _kernel_concat(c, finals) -> bool:
    """``c`` concatenates, on channels, only outputs of conv chains (``finals``): a concat of uint8 kernel
    outputs stays uint8 (Inception's and SqueezeNet's branches)."""
    from tvm import relax  # lazy: heavy (TVM)

    return (_op_is(c, "relax.concat") and c.attrs.axis is not None and int(c.attrs.axis) == 1
            and isinstance(c.args[0], relax.Tuple) and all(f in finals for f in c.args[0].fields))


def _u8_max_pool(c, f) -> bool:
    """``c`` max-pools ``f`` in NCHW: it pools uint8 activations as well (max commutes with quantization;
    the conv after it takes the pool input's quantization, ``onnx_prep.pooled_source``)."""
    return (_op_is(c, "relax.nn.max_pool2d") and c.args[0].same_as(f) and str(c.attrs.layout) == "NCHW"
            and str(c.attrs.out_layout) == "NCHW")


def _uint8_reader(f, users: dict, value: dict, by_safe: dict, reads_u8, groups: dict, absorbed: dict,
                  finals=frozenset()):
    """The safe name of a conv that reads ``f`` as uint8 activations where every reader of ``f`` takes
    them: convs on tvmq kernels (``reads_u8``) with one activation quantization, later kernels' fused
    residual adds (they dequantize it), and channel concats of conv outputs (``finals``) and max pools
    whose readers all take them; else None."""
    from tvm import relax  # lazy: heavy (TVM)

    first, acts = None, set()
    for u in users.get(f, [None]):
        if u is None:  # the function's output
            return None
        c = value[u]
        if _kernel_concat(c, finals) or _u8_max_pool(c, f):
            name = _uint8_reader(u, users, value, by_safe, reads_u8, groups, absorbed, finals)
            if name is None:
                return None
            acts.add((float(by_safe[name].act["scale"]), float(by_safe[name].act["zero_point"])))
            first = first or name
        elif (_op_is(c, "relax.nn.conv2d") and c.args[0].same_as(f) and isinstance(c.args[1], relax.Var)
                and c.args[1].name in by_safe and reads_u8(c)):
            act = by_safe[c.args[1].name].act
            if not act:
                return None
            acts.add((float(act["scale"]), float(act["zero_point"])))
            first = first or c.args[1].name
        elif not (u in absorbed and groups[absorbed[u]]["residual"] is not None
                  and groups[absorbed[u]]["residual"].same_as(f)):
            return None
    return first if len(acts) == 1 else None


def fuse_epilogues(main, by_safe: dict, arrays: dict, residual: bool = False,
                   reads_u8=None) -> tuple[dict, dict]:
    """conv2d bindings whose output goes (only) through a bias add, a residual add (with ``residual``)
    and/or a ReLU, or into convs that read uint8 activations: ({conv var: epilogue}, {absorbed binding
    var: conv var}). An epilogue is dict(bias=array or None, residual=the other operand's var or None,
    relu=False/True/cap, final=the var that ends the chain, absorbed=[vars], quant_for=the safe name of
    a layer whose uint8 activations the kernel can write, or None: see ``_uint8_reader``).
    ``reads_u8(conv call)``: whether that conv's kernel reads uint8 activations."""
    from tvm import relax  # lazy: heavy (TVM)

    bindings = [b for blk in main.body.blocks for b in blk.bindings if isinstance(b, relax.VarBinding)]
    value = {b.var: b.value for b in bindings}
    order = {b.var: i for i, b in enumerate(bindings)}
    users: dict = {}
    for b in bindings:
        for v in relax.analysis.free_vars(b.value):
            users.setdefault(v, []).append(b.var)
    for v in relax.analysis.free_vars(main.body.body):
        users.setdefault(v, []).append(None)

    def only_user(v):
        u = users.get(v, [])
        return u[0] if len(u) == 1 and u[0] is not None else None

    groups, absorbed, final_of, chains = {}, {}, {}, []
    for b in bindings:
        c = b.value
        if not (_op_is(c, "relax.nn.conv2d") and isinstance(c.args[1], relax.Var) and c.args[1].name in by_safe):
            continue
        L = by_safe[c.args[1].name]
        cur, eaten, bias, relu = b.var, [], None, False
        u = only_user(cur)
        bname = f"{L.safe}_b"
        if u is not None and _op_is(value[u], "relax.add") and bname in arrays:
            a0, a1 = value[u].args
            other = a1 if a0.same_as(cur) else a0
            ov = value.get(other)
            if (isinstance(other, relax.Var) and ov is not None and _op_is(ov, "relax.reshape")
                    and isinstance(ov.args[0], relax.Var) and ov.args[0].name == bname
                    and users.get(other) == [u]):
                bias = np.asarray(arrays[bname][1], np.float32).reshape(-1)
                eaten += [other, u]
                cur = u
        u = only_user(cur)
        res = _residual_of(value[u], cur, order, order[b.var], final_of) \
            if residual and u is not None and _op_is(value[u], "relax.add") else None
        if res is not None:
            eaten.append(u)
            cur = u
        u = only_user(cur)
        if u is not None and _op_is(value[u], "relax.nn.relu"):
            relu, cur = True, u
            eaten.append(u)
        elif u is not None and _te_bound(value, value[u], "maximum", cur) == 0.0:  # ONNX Clip(x, 0, hi)
            u2 = only_user(u)
            hi = _te_bound(value, value[u2], "minimum", u) if u2 is not None else None
            if hi is not None and hi > 0.0:
                relu, cur = hi, u2
                eaten += [u, u2]
        elif u is not None and _op_is(value[u], "relax.clip"):
            lo, hi = _const_float(value[u].args[1]), _const_float(value[u].args[2])
            if lo == 0.0 and hi is not None and 0.0 < hi < float("inf"):
                relu, cur = hi, u
                eaten.append(u)
        chains.append((b.var, dict(bias=bias, residual=res, relu=relu, final=cur, absorbed=eaten, quant_for=None)))
        if eaten:
            groups[b.var] = chains[-1][1]
            final_of[cur] = b.var
            absorbed.update({v: b.var for v in eaten})
    if reads_u8 is not None:
        finals = frozenset(chain["final"] for _, chain in chains)
        for conv, chain in chains:
            quant_for = _uint8_reader(chain["final"], users, value, by_safe, reads_u8, groups, absorbed, finals)
            if quant_for:
                groups[conv] = {**chain, "quant_for": quant_for}
    return groups, absorbed
