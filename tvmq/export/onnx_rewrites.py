"""In-place rewrites of an ONNX graph before import: dense layers as 1x1 convolutions, inference
Dropout as Identity, n-ary Sum as binary Adds (onnx + numpy only)."""

from __future__ import annotations

import re

import numpy as np


def initializers(graph) -> dict:
    """The graph's initializers by name."""
    return {t.name: t for t in graph.initializer}


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
        idx = list(g.node).index(n)
        g.node.remove(n)
        for k, nn in enumerate(new):
            g.node.insert(idx + k, nn)
        done.append(label)
    used = {x for nd in g.node for x in nd.input}
    for t in [t for t in g.initializer if t.name not in used]:
        g.initializer.remove(t)
    return done


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
