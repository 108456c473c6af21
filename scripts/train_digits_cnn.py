"""Train the small CNN that tvmq ships for accuracy measurements.

Data: scikit-learn's 8x8 handwritten digits (bundled with the package, no
download), pixels scaled to [0, 1], a stratified 70/30 train/test split.
Model: Conv3x3(1->8, pad 1) + ReLU, Conv3x3(8->16, stride 2, pad 1) + ReLU,
Flatten, Gemm(256->10). Trained in plain numpy (im2col + Adam), then written
as an ONNX graph with onnx.helper (opset 17, IR version 9).

Writes ``tvmq/data/digits_cnn.onnx`` and ``tvmq/data/digits_test.npz``
(``x`` float32 NCHW, ``y`` int64) and prints the float top-1 measured by
both numpy and onnxruntime.

Usage: ``python scripts/train_digits_cnn.py [--epochs 60] [--seed 0] [--out tvmq/data]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

# (name, in channels, out channels, stride); every kernel is 3x3 with padding 1
CONVS = [("conv1", 1, 8, 1), ("conv2", 8, 16, 2)]
N_CLASSES = 10


def load_split(seed: int):
    """Digits as (x_train, y_train, x_test, y_test); x is float32 N x 1 x 8 x 8 in [0, 1]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.3, stratify=y, random_state=seed)
    return xtr, ytr, xte, yte


def im2col(x, stride):
    """3x3 windows of the zero-padded input: (N, C*9, Ho*Wo)."""
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))[:, :, ::stride, ::stride]
    n, c, ho, wo = win.shape[:4]
    return win.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * 9, ho * wo), (ho, wo)


def col2im(dcols, shape, stride):
    """Adjoint of im2col: scatter-add window gradients back to the input."""
    n, c, h, w = shape
    ho, wo = (h - 1) // stride + 1, (w - 1) // stride + 1
    d = dcols.reshape(n, c, 3, 3, ho, wo)
    dxp = np.zeros((n, c, h + 2, w + 2), dcols.dtype)
    for r in range(3):
        for s in range(3):
            dxp[:, :, r:r + stride * ho:stride, s:s + stride * wo:stride] += d[:, :, r, s]
    return dxp[:, :, 1:-1, 1:-1]


def init_params(rng):
    p = {}
    for name, ci, co, _ in CONVS:
        p[name + ".w"] = rng.normal(0, np.sqrt(2 / (ci * 9)), (co, ci, 3, 3))
        p[name + ".b"] = np.zeros(co)
    p["fc.w"] = rng.normal(0, np.sqrt(1 / 256), (N_CLASSES, 256))
    p["fc.b"] = np.zeros(N_CLASSES)
    return p


def forward(p, x):
    """Logits and the cache backward needs."""
    cache, a = [], x.astype(np.float64)
    for name, _, co, stride in CONVS:
        cols, (ho, wo) = im2col(a, stride)
        z = np.einsum("ok,nkp->nop", p[name + ".w"].reshape(co, -1), cols) + p[name + ".b"][None, :, None]
        cache.append((a.shape, cols, z))
        a = np.maximum(z, 0).reshape(len(x), co, ho, wo)
    flat = a.reshape(len(x), -1)
    cache.append(flat)
    return flat @ p["fc.w"].T + p["fc.b"], cache


def backward(p, cache, logits, y):
    """Mean cross-entropy loss and its gradients."""
    n = len(y)
    e = np.exp(logits - logits.max(1, keepdims=True))
    prob = e / e.sum(1, keepdims=True)
    loss = -np.log(prob[np.arange(n), y] + 1e-12).mean()
    dlog = prob
    dlog[np.arange(n), y] -= 1
    dlog /= n
    flat = cache[-1]
    g = {"fc.w": dlog.T @ flat, "fc.b": dlog.sum(0)}
    da = (dlog @ p["fc.w"]).reshape(n, -1)
    for (name, _, co, stride), (in_shape, cols, z) in zip(reversed(CONVS), reversed(cache[:-1])):
        dz = da.reshape(z.shape) * (z > 0)
        g[name + ".w"] = np.einsum("nop,nkp->ok", dz, cols).reshape(p[name + ".w"].shape)
        g[name + ".b"] = dz.sum((0, 2))
        if name != CONVS[0][0]:
            dcols = np.einsum("ok,nop->nkp", p[name + ".w"].reshape(co, -1), dz)
            da = col2im(dcols, in_shape, stride)
    return loss, g


def train(xtr, ytr, epochs, seed, lr=3e-3, batch=64, wd=1e-4):
    """Adam with a cosine learning-rate decay; returns float64 parameters."""
    rng = np.random.default_rng(seed)
    p = init_params(rng)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    steps_per_epoch = -(-len(xtr) // batch)
    total, t = epochs * steps_per_epoch, 0
    for ep in range(epochs):
        order = rng.permutation(len(xtr))
        losses = []
        for i in range(0, len(xtr), batch):
            idx = order[i:i + batch]
            logits, cache = forward(p, xtr[idx])
            loss, g = backward(p, cache, logits, ytr[idx])
            losses.append(loss)
            t += 1
            step = lr * 0.5 * (1 + np.cos(np.pi * t / total))
            for k in p:
                gk = g[k] + wd * p[k]
                m[k] = 0.9 * m[k] + 0.1 * gk
                v[k] = 0.999 * v[k] + 0.001 * gk * gk
                p[k] -= step * (m[k] / (1 - 0.9**t)) / (np.sqrt(v[k] / (1 - 0.999**t)) + 1e-8)
        if ep % 10 == 0 or ep == epochs - 1:
            print(f"epoch {ep:3d}  loss {np.mean(losses):.4f}")
    return p


def to_onnx(p):
    """The trained network as an ONNX ModelProto (float32 weights as initializers)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in p.items()]
    nodes, prev = [], "x"
    for name, _, _, stride in CONVS:
        nodes.append(helper.make_node("Conv", [prev, name + ".w", name + ".b"], [name], name=name,
                                      kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[stride, stride]))
        nodes.append(helper.make_node("Relu", [name], [name + ".relu"], name=name + ".relu"))
        prev = name + ".relu"
    nodes.append(helper.make_node("Flatten", [prev], ["flat"], name="flatten", axis=1))
    nodes.append(helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], name="fc", transB=1))
    graph = helper.make_graph(
        nodes, "digits_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", N_CLASSES])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="tvmq-train-digits")
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def ort_top1(model, x, y) -> float:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    logits = sess.run(None, {"x": x})[0]
    return float((logits.argmax(1) == y).mean())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "tvmq" / "data")
    args = ap.parse_args(argv)

    import onnx

    xtr, ytr, xte, yte = load_split(args.seed)
    p = train(xtr, ytr, args.epochs, args.seed)
    np_top1 = float((forward(p, xte)[0].argmax(1) == yte).mean())
    model = to_onnx(p)
    top1 = ort_top1(model, xte, yte)
    args.out.mkdir(parents=True, exist_ok=True)
    onnx.save(model, args.out / "digits_cnn.onnx")
    np.savez(args.out / "digits_test.npz", x=xte.astype(np.float32), y=yte.astype(np.int64))
    size = (args.out / "digits_cnn.onnx").stat().st_size
    print(f"train {len(xtr)}  test {len(xte)}  weights {sum(v.size for v in p.values())}  onnx {size} bytes")
    print(f"float top-1 on the test split: numpy {np_top1:.4f}  onnxruntime {top1:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
