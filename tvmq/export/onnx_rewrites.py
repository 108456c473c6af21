"""In-place rewrites of an ONNX graph before import: constant weights folded, dense layers as 1x1
convolutions, inference Dropout as Identity, n-ary Sum as binary Adds, a narrow conv of a concat as one
conv per part (onnx + numpy only)."""

from __future__ import annotations

import re

import numpy as np


def initializers(graph) -> dict:
    """The graph's initializers by name."""
    return {t.name: t for t in graph.initializer}


def fold_constant_weights(model) -> list[str]:
    """Reshape of a constant by a constant shape, and ConstantOfShape of a constant shape, become
    initializers, in place (Inception-v1's classifier takes its Gemm weight through a Reshape and its
    bias from a ConstantOfShape: folded, the Gemm runs on a tvmq kernel); returns the folded outputs."""
    from onnx import helper, numpy_helper  # lazy: heavy (onnx)

    g = model.graph
    inits, done = initializers(g), []
    for n in list(g.node):  # in graph order: a folded output is an initializer for the nodes after it
        if n.op_type == "Reshape" and len(n.input) == 2 and all(i in inits for i in n.input):
            x, shape = (numpy_helper.to_array(inits[i]) for i in n.input)
            allow0 = any(a.name == "allowzero" and helper.get_attribute_value(a) for a in n.attribute)
            dims = [int(d) if d != 0 or allow0 else x.shape[k] for k, d in enumerate(shape.tolist())]
            value = x.reshape(dims)
        elif n.op_type == "ConstantOfShape" and len(n.input) == 1 and n.input[0] in inits:
            fill = next((numpy_helper.to_array(helper.get_attribute_value(a)) for a in n.attribute
                         if a.name == "value"), np.zeros(1, np.float32))
            value = np.full(numpy_helper.to_array(inits[n.input[0]]).astype(np.int64).tolist(), fill.reshape(-1)[0],
                            fill.dtype)
        else:
            continue
        inits[n.output[0]] = numpy_helper.from_array(np.ascontiguousarray(value), n.output[0])
        g.initializer.append(inits[n.output[0]])
        g.node.remove(n)
        done.append(n.output[0])
    if done:
        _drop_unused_initializers(g)
    return done


def gemm_to_conv(model) -> list[str]:
    """Rewrite each Gemm with a constant 2-D weight (alpha = beta = 1, transA = 0, bias constant 1-D)
    as Reshape -> 1x1 Conv -> Flatten, in place; returns the rewritten node names."""
    from onnx import helper, numpy_helper  # lazy: heavy (onnx)

    g = model.graph
    inits = initializers(g)
    done = []
    for i, n in enumerate(list(g.node)):
        if n.op_type != "Gemm" or len(n.input) < 2 or n.input[1] not in inits:
            continue
        at = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        if at.get("alpha", 1.0) != 1.0 or at.get("transA", 0) or (len(n.input) > 2 and at.get("beta", 1.0) != 1.0):
            continue
        w = numpy_helper.to_array(inits[n.input[1]])
        if w.ndim != 2 or not np.issubdtype(w.dtype, np.floating):
            continue
        w = w if at.get("transB", 0) else w.T
        bias = n.input[2] if len(n.input) > 2 and n.input[2] else None
        if bias is not None:
            if bias not in inits:
                continue
            b = numpy_helper.to_array(inits[bias]).reshape(-1)
            if b.shape != (w.shape[0],):
                continue
        label = n.name or n.output[0]
        base = re.sub(r"\W", "_", label)
        wname, shname, mid, conv_out = f"{base}.gemm_w", f"{base}.gemm_shape", f"{base}.gemm_in", f"{base}.gemm_out"
        g.initializer.append(numpy_helper.from_array(np.ascontiguousarray(w.reshape(*w.shape, 1, 1)), wname))
        g.initializer.append(numpy_helper.from_array(np.array([0, -1, 1, 1], np.int64), shname))
        ins = [mid, wname]
        if bias is not None:
            bname = f"{base}.gemm_b"
            g.initializer.append(numpy_helper.from_array(b.astype(w.dtype), bname))
            ins.append(bname)
        new = [helper.make_node("Reshape", [n.input[0], shname], [mid], name=f"{label}.reshape"),
               helper.make_node("Conv", ins, [conv_out], name=label, kernel_shape=[1, 1]),
               helper.make_node("Flatten", [conv_out], [n.output[0]], name=f"{label}.flatten", axis=1)]
        _replace(g, n, new)
        done.append(label)
    _drop_unused_initializers(g)
    return done


def _replace(g, n, new: list):
    """Node ``n`` of graph ``g`` replaced by the nodes ``new``, in its place."""
    pos = list(g.node).index(n)
    g.node.remove(n)
    for k, nn in enumerate(new):
        g.node.insert(pos + k, nn)


def _drop_unused_initializers(g):
    used = {x for nd in g.node for x in nd.input}
    for t in [t for t in g.initializer if t.name not in used]:
        g.initializer.remove(t)


def dropouts_as_identity(model) -> int:
    """Dropout (inference: the identity) whose mask output is unused becomes Identity, in place, so the
    graph's layout stays blocked through it; returns how many."""
    from onnx import helper  # lazy: heavy (onnx)

    g = model.graph
    used = {x for nd in g.node for x in nd.input} | {o.name for o in g.output}
    done = 0
    for i, n in enumerate(list(g.node)):
        if n.op_type != "Dropout" or (len(n.output) > 1 and n.output[1] and n.output[1] in used):
            continue
        g.node.remove(n)
        g.node.insert(i, helper.make_node("Identity", [n.input[0]], [n.output[0]], name=n.name))
        done += 1
    return done


def sums_as_adds(model) -> int:
    """Sum of two or more inputs becomes a chain of binary Adds (the same broadcasting), in place: TVM's
    frontend imports Sum as broadcast, stack and a reduction, which neither fuses into a kernel's
    epilogue nor works on blocked layouts (ResNet-50's residual adds); returns how many."""
    from onnx import helper  # lazy: heavy (onnx)

    g = model.graph
    done = 0
    for n in [n for n in g.node if n.op_type == "Sum" and len(n.input) >= 2]:
        i = list(g.node).index(n)
        g.node.remove(n)
        acc = n.input[0]
        for k, x in enumerate(n.input[1:]):
            out = n.output[0] if k == len(n.input) - 2 else f"{n.output[0]}__sum{k}"
            g.node.insert(i + k, helper.make_node("Add", [acc, x], [out], name=f"{n.name or n.output[0]}__add{k}"))
            acc = out
        done += 1
    return done


def split_concat_convs(model) -> list[str]:
    """A Conv whose input is a channel Concat that only it reads, with at most half as many output as
    input channels (SqueezeNet's squeeze conv after a fire module), becomes one Conv per concat input on
    its slice of the weights (the bias on the first), summed by Adds, in place: the concat's copy of
    the wide input goes, and each partial sum is the narrow output (the export fuses each Add into the
    next kernel as its residual). Returns the rewritten node names."""
    import onnx  # lazy: heavy (onnx)
    from onnx import helper, numpy_helper  # lazy: heavy (onnx)

    g = model.graph
    inits = initializers(g)
    try:
        inferred = onnx.shape_inference.infer_shapes(model).graph
    except Exception:  # noqa: BLE001  (no shapes: nothing to rewrite)
        return []
    chans = {}
    for v in list(inferred.value_info) + list(inferred.input) + list(inferred.output):
        dims = v.type.tensor_type.shape.dim
        if len(dims) == 4 and dims[1].HasField("dim_value"):
            chans[v.name] = dims[1].dim_value
    readers: dict = {}
    for nd in g.node:
        for x in nd.input:
            readers[x] = readers.get(x, 0) + 1
    outputs = {o.name for o in g.output}
    made_by = {o: nd for nd in g.node for o in nd.output}
    done = []
    for n in [n for n in g.node if n.op_type == "Conv"]:
        cat = made_by.get(n.input[0])
        at = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        if (cat is None or cat.op_type != "Concat" or helper.get_attribute_value(cat.attribute[0]) != 1
                or readers.get(cat.output[0]) != 1 or cat.output[0] in outputs or at.get("group", 1) != 1
                or n.input[1] not in inits or any(x not in chans for x in cat.input)):
            continue
        w = numpy_helper.to_array(inits[n.input[1]])
        parts = [chans[x] for x in cat.input]
        if sum(parts) != w.shape[1] or 2 * w.shape[0] > w.shape[1]:
            continue
        label = n.name or n.output[0]
        base = re.sub(r"\W", "_", label)
        new, acc, lo = [], None, 0
        for k, (x, c) in enumerate(zip(cat.input, parts)):
            wname, out = f"{base}.part{k}_w", f"{base}.part{k}"
            g.initializer.append(numpy_helper.from_array(np.ascontiguousarray(w[:, lo:lo + c]), wname))
            ins = [x, wname] + ([n.input[2]] if k == 0 and len(n.input) > 2 and n.input[2] else [])
            new.append(helper.make_node("Conv", ins, [out], name=f"{label}.part{k}", **at))
            if acc is not None:
                s = n.output[0] if k == len(parts) - 1 else f"{base}.sum{k}"
                new.append(helper.make_node("Add", [out, acc], [s], name=f"{label}.add{k}"))
                out = s
            acc, lo = out, lo + c
        g.node.remove(cat)
        _replace(g, n, new)  # the concat's inputs come before the conv, its readers after
        done.append(label)
    _drop_unused_initializers(g)
    return done
