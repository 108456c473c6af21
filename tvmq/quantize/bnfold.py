"""Fold inference-mode BatchNormalization into the preceding Conv (seed 004, eq. 6.11).

``BN(conv(x, W) + b) = conv(x, W') + b'`` with, per output channel,
``W' = W * gamma / sqrt(var + eps)`` and ``b' = beta + (b - mean) * gamma / sqrt(var + eps)``.
Folding first means the quantizer sees the weights the network really uses.
"""

from __future__ import annotations

import numpy as np


def fold_bn(w, b, gamma, beta, mean, var, eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """Folded (weights, bias) in float64; ``w`` has output channels on axis 0, ``b`` may be None."""
    w = np.asarray(w, np.float64)
    factor = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(var, np.float64) + eps)
    b = np.zeros(w.shape[0]) if b is None else np.asarray(b, np.float64)
    w2 = w * factor.reshape((-1,) + (1,) * (w.ndim - 1))
    return w2, np.asarray(beta, np.float64) + (b - np.asarray(mean, np.float64)) * factor


def _consumers(graph, name):
    return [n for n in graph.node if name in n.input]


def _foldable(graph, bn, producers, inits) -> bool:
    conv = producers.get(bn.input[0])
    if conv is None or conv.op_type != "Conv" or len(bn.output) != 1:
        return False
    if any(o.name == conv.output[0] for o in graph.output) or len(_consumers(graph, conv.output[0])) != 1:
        return False
    params = list(conv.input[1:]) + list(bn.input[1:])
    return all(p in inits for p in params) and len(bn.input) == 5


def fold_batchnorms(model) -> list[str]:
    """Fold every foldable Conv -> BatchNormalization pair of an ONNX model in place.

    A pair folds when the Conv output feeds only the BatchNormalization, is
    not a graph output, and all weights and BN statistics are initializers.
    The folded weights get new initializer names (``<conv>.bnfold.w/b``) so a
    tensor shared with another node is left alone. Returns the folded Conv names.
    """
    from onnx import helper, numpy_helper  # lazy: onnx is heavy and stays out of start-up

    g = model.graph
    inits = {t.name: t for t in g.initializer}
    producers = {o: n for n in g.node for o in n.output}
    folded, replaced = [], set()
    for bn in [n for n in g.node if n.op_type == "BatchNormalization"]:
        if not _foldable(g, bn, producers, inits):
            continue
        conv = producers[bn.input[0]]
        arr = lambda name: numpy_helper.to_array(inits[name])  # noqa: E731
        w = arr(conv.input[1])
        b = arr(conv.input[2]) if len(conv.input) > 2 and conv.input[2] else None
        stats = [arr(n) for n in bn.input[1:5]]
        if w.size == 0 or any(s.shape != (w.shape[0],) for s in stats):
            continue  # malformed pair: leave it for the quantizer's checks to report
        eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
        w2, b2 = fold_bn(w, b, *stats, eps=eps)
        cname = conv.name or conv.output[0]
        wn, bname = f"{cname}.bnfold.w", f"{cname}.bnfold.b"
        g.initializer.extend([numpy_helper.from_array(w2.astype(w.dtype), wn),
                              numpy_helper.from_array(b2.astype(w.dtype), bname)])
        new_conv = helper.make_node("Conv", [conv.input[0], wn, bname], [bn.output[0]], name=conv.name)
        new_conv.attribute.extend(conv.attribute)
        idx = list(g.node).index(conv)
        g.node.remove(bn)
        g.node.remove(conv)
        g.node.insert(idx, new_conv)
        producers[bn.output[0]] = new_conv
        folded.append(cname)
        replaced.update(list(conv.input[1:]) + list(bn.input[1:]))
    _drop_unused(g, replaced)
    return folded


def _drop_unused(graph, names):
    """Remove the initializers in ``names`` that no node or output uses any more."""
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    for t in [t for t in graph.initializer if t.name in names and t.name not in used]:
        graph.initializer.remove(t)
