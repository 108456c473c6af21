"""BatchNormalization statistics that fit the activations, for models given random weights.

Random running means and variances do not normalize anything: through ResNet's or ShuffleNet's
residual adds the activations grow by orders of magnitude (ShuffleNet's logits reach 4e5), the
softmax saturates to one-hot, and comparing two implementations' outputs says nothing. A trained
network's statistics are its activations' own; :func:`fit` gives a randomly weighted model the
same, in one onnxruntime pass: every BatchNormalization is replaced by the normalization with the
batch's own per-channel mean and variance (exactly what BN computes when its running statistics
equal them), those statistics are read out, and written into the original nodes' inputs.
"""

from __future__ import annotations

import numpy as np

from ..quantize.evaluate import run as ort_run


def _reduce_mean(helper, x: str, out: str, opset: int):
    """ReduceMean over N, H, W (keepdims): axes as an attribute before opset 18, an input from 18."""
    if opset >= 18:
        return [helper.make_node("ReduceMean", [x, f"{out}.axes"], [out], keepdims=1)], \
            [(f"{out}.axes", np.array([0, 2, 3], np.int64))]
    return [helper.make_node("ReduceMean", [x], [out], axes=[0, 2, 3], keepdims=1)], []


def _fittable(n, inits) -> bool:
    return n.op_type == "BatchNormalization" and len(n.input) == 5 and all(i in inits for i in n.input[1:])


def _batch_norm_graph(model):
    """A copy of ``model`` whose BatchNormalization nodes normalize with their input's batch statistics;
    also returns, per BN, the names of its mean and variance outputs."""
    import onnx  # lazy: heavy (onnx)
    from onnx import TensorProto, helper, numpy_helper  # lazy: heavy (onnx)

    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    opset = next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), 9)
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    nodes, stats = [], []
    for n in g.node:
        if not _fittable(n, inits):
            nodes.append(n)
            continue
        x, scale, bias = n.input[0], n.input[1], n.input[2]
        eps = next((helper.get_attribute_value(a) for a in n.attribute if a.name == "epsilon"), 1e-5)
        p = f"_tvmq_bn{len(stats)}"
        new, consts = [], []
        for name, arr in ((f"{p}.scale", inits[scale]), (f"{p}.bias", inits[bias])):
            consts.append((name, np.asarray(arr, np.float32).reshape(1, -1, 1, 1)))
        consts.append((f"{p}.eps", np.array(eps, np.float32)))
        a, c = _reduce_mean(helper, x, f"{p}.mean", opset)
        new += a
        consts += c
        new.append(helper.make_node("Sub", [x, f"{p}.mean"], [f"{p}.d"]))
        new.append(helper.make_node("Mul", [f"{p}.d", f"{p}.d"], [f"{p}.d2"]))
        a, c = _reduce_mean(helper, f"{p}.d2", f"{p}.var", opset)
        new += a
        consts += c
        new.append(helper.make_node("Add", [f"{p}.var", f"{p}.eps"], [f"{p}.ve"]))
        new.append(helper.make_node("Sqrt", [f"{p}.ve"], [f"{p}.sd"]))
        new.append(helper.make_node("Div", [f"{p}.d", f"{p}.sd"], [f"{p}.z"]))
        new.append(helper.make_node("Mul", [f"{p}.z", f"{p}.scale"], [f"{p}.zs"]))
        new.append(helper.make_node("Add", [f"{p}.zs", f"{p}.bias"], [n.output[0]]))
        nodes += new
        g.initializer.extend(numpy_helper.from_array(v, k) for k, v in consts)
        for s in (f"{p}.mean", f"{p}.var"):
            g.output.append(helper.make_tensor_value_info(s, TensorProto.FLOAT, None))
        stats.append((f"{p}.mean", f"{p}.var"))
    del g.node[:]
    g.node.extend(nodes)
    return m, stats


def fit(model, x: np.ndarray) -> int:
    """Set, in place, every BatchNormalization's running mean and variance (constant initializers) to
    its input's per-channel statistics on ``x``; returns how many were set."""
    from onnx import numpy_helper  # lazy: heavy (onnx)

    g = model.graph
    inits = {t.name: t for t in g.initializer}
    bns = [n for n in g.node if _fittable(n, inits)]
    if not bns:
        return 0
    m, names = _batch_norm_graph(model)
    vals = ort_run(m, x, [s for pair in names for s in pair], what="batch-norm statistics")
    for i, n in enumerate(bns):
        mean, var = vals[2 * i].reshape(-1), vals[2 * i + 1].reshape(-1)
        for name, arr in ((n.input[3], mean), (n.input[4], var)):
            dtype = numpy_helper.to_array(inits[name]).dtype
            inits[name].CopyFrom(numpy_helper.from_array(arr.astype(dtype), name))
    return len(bns)
