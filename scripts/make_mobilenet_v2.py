#!/usr/bin/env python3
"""Write MobileNet-v2 as ONNX (opset 17, IR 9) with seeded random weights, built with ``onnx.helper``.

    python scripts/make_mobilenet_v2.py OUT.onnx [--width 1.0] [--resolution 224] [--seed 0] [--batchnorm]
    python scripts/make_mobilenet_v2.py OUT.onnx --tiny      # a 16x16 residual net with depthwise layers, for tests

The architecture is the public one (Sandler et al., "MobileNetV2: Inverted Residuals and Linear
Bottlenecks", 2018; the layout of torchvision's ``mobilenet_v2``): a 3x3 stride-2 stem of 32
channels; 17 inverted residual blocks ``(t, c, n, s)`` = (1,16,1,1) (6,24,2,2) (6,32,3,2) (6,64,4,2)
(6,96,3,1) (6,160,3,2) (6,320,1,1), each a 1x1 expansion to t x its input channels (absent when
t = 1), a 3x3 depthwise convolution (group = channels, stride s on the first block of a stage),
a linear 1x1 projection, and a residual Add where stride is 1 and channels are kept; a 1x1 conv to
1280 channels, global average pooling, Flatten and a 1000-class Gemm. ReLU6 is ``Clip(0, 6)``.
Channel counts are ``width`` x the above rounded to multiples of 8 (torchvision's ``_make_divisible``;
the 1280 never shrinks below 1.0).

Weights: He-normal (std sqrt(2 / fan_in), fan_in = in_channels / group x kh x kw) for the convs
followed by ReLU6, LeCun-normal (sqrt(1 / fan_in)) for the linear projections and the classifier,
so the signal's scale holds through the network; biases uniform in [-0.05, 0.05]. By default the
batch norms are folded (a Conv with a bias, as deployed); ``--batchnorm`` writes Conv (no bias) ->
BatchNormalization with seeded statistics instead (the parameter count then matches torchvision's
3,504,872 for width 1.0). The input is ``input`` [N, 3, R, R] (batch free), the output ``logits`` [N, classes].
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
TINY = dict(resolution=16, stem=8, settings=((1, 8, 1, 1), (2, 16, 2, 2)), last=32, classes=10)


def make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's rounding of channel counts: nearest multiple of ``divisor``, never below 90% of ``v``."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


class _Builder:
    def __init__(self, seed: int, batchnorm: bool):
        from onnx import helper, numpy_helper

        self.h, self.nh = helper, numpy_helper
        self.rng = np.random.default_rng(seed)
        self.bn = batchnorm
        self.nodes, self.inits = [], []
        # ReLU6's bounds: two scalars shared by every Clip
        self.relu6 = [self.init("relu6.min", np.array(0.0, np.float32)),
                      self.init("relu6.max", np.array(6.0, np.float32))]

    def init(self, name: str, arr: np.ndarray) -> str:
        self.inits.append(self.nh.from_array(arr if arr.ndim == 0 else np.ascontiguousarray(arr), name))
        return name

    def conv(self, x: str, c_in: int, c_out: int, k: int, stride: int = 1, group: int = 1, relu6: bool = True,
             name: str = "conv") -> str:
        fan_in = c_in // group * k * k
        std = np.sqrt((2.0 if relu6 else 1.0) / fan_in)
        w = self.init(f"{name}.weight", self.rng.normal(0.0, std, (c_out, c_in // group, k, k)).astype(np.float32))
        pad = (k - 1) // 2
        attrs = dict(kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4, group=group)
        if self.bn:
            y = self.h.make_node("Conv", [x, w], [f"{name}.conv"], name=name, **attrs)
            self.nodes.append(y)
            ch = (c_out,)
            stats = [self.init(f"{name}.bn.{s}", a.astype(np.float32)) for s, a in (
                ("scale", self.rng.uniform(0.8, 1.2, ch)), ("bias", self.rng.uniform(-0.05, 0.05, ch)),
                ("mean", self.rng.uniform(-0.05, 0.05, ch)), ("var", self.rng.uniform(0.8, 1.2, ch)))]
            self.nodes.append(self.h.make_node("BatchNormalization", [f"{name}.conv", *stats], [f"{name}.out"],
                                               name=f"{name}.bn", epsilon=1e-5))
        else:
            b = self.init(f"{name}.bias", self.rng.uniform(-0.05, 0.05, c_out).astype(np.float32))
            self.nodes.append(self.h.make_node("Conv", [x, w, b], [f"{name}.out"], name=name, **attrs))
        y = f"{name}.out"
        if relu6:
            self.nodes.append(self.h.make_node("Clip", [y, *self.relu6], [f"{name}.relu6"], name=f"{name}.relu6"))
            y = f"{name}.relu6"
        return y


def mobilenet_v2(width: float = 1.0, resolution: int = 224, seed: int = 0, batchnorm: bool = False,
                 settings=SETTINGS, stem: int = 32, last: int = 1280, classes: int = 1000, name: str | None = None):
    """The ModelProto of MobileNet-v2 (``settings``: its (t, c, n, s) stages; the defaults are the paper's)."""
    import onnx
    from onnx import TensorProto, helper

    if width <= 0 or resolution < 8:
        raise ValueError(f"--width must be > 0 and --resolution >= 8, got {width} and {resolution}")
    b = _Builder(seed, batchnorm)
    c_in = make_divisible(stem * width)
    x = b.conv("input", 3, c_in, 3, stride=2, name="stem")
    for bi, (t, c, n, s) in enumerate(settings):
        c_out = make_divisible(c * width)
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = c_in * t
            y = x
            if t != 1:
                y = b.conv(y, c_in, hidden, 1, name=f"b{bi}_{i}_expand")
            y = b.conv(y, hidden, hidden, 3, stride=stride, group=hidden, name=f"b{bi}_{i}_dw")
            y = b.conv(y, hidden, c_out, 1, relu6=False, name=f"b{bi}_{i}_project")
            if stride == 1 and c_in == c_out:
                out = f"b{bi}_{i}_add"
                b.nodes.append(helper.make_node("Add", [x, y], [out], name=out))
                y = out
            x, c_in = y, c_out
    c_last = make_divisible(last * max(1.0, width))
    x = b.conv(x, c_in, c_last, 1, name="last")
    b.nodes.append(helper.make_node("GlobalAveragePool", [x], ["pool"], name="pool"))
    b.nodes.append(helper.make_node("Flatten", ["pool"], ["flat"], name="flatten", axis=1))
    w = b.init("classifier.weight", b.rng.normal(0.0, np.sqrt(1.0 / c_last), (classes, c_last)).astype(np.float32))
    bias = b.init("classifier.bias", b.rng.uniform(-0.05, 0.05, classes).astype(np.float32))
    b.nodes.append(helper.make_node("Gemm", ["flat", w, bias], ["logits"], name="classifier", transB=1))
    graph = helper.make_graph(
        b.nodes, name or f"mobilenet_v2_{width:g}_{resolution}",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, resolution, resolution])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="tvmq",
                              doc_string=f"MobileNet-v2 width {width:g}, {resolution}x{resolution}, seeded random "
                                         f"weights (seed {seed}), scripts/make_mobilenet_v2.py")
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def tiny(seed: int = 0, batchnorm: bool = False):
    """A tiny residual net with depthwise layers, MobileNet-v2's blocks at test size: a 16x16x3 input,
    a stride-2 stem of 8 channels, a t=1 block (depthwise 8 groups, projection, residual Add), a t=2
    stage of two blocks (stride 2 to 16 channels, then one with a residual Add), a 1x1 conv to 32,
    pooling and a 10-class Gemm."""
    return mobilenet_v2(1.0, seed=seed, batchnorm=batchnorm, name="tiny_mobilenet_v2", **TINY)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="the .onnx file to write")
    p.add_argument("--width", type=float, default=1.0, help="width multiplier (default 1.0)")
    p.add_argument("--resolution", type=int, default=224, help="input height and width (default 224)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    p.add_argument("--batchnorm", action="store_true", help="Conv -> BatchNormalization instead of folded biases")
    p.add_argument("--tiny", action="store_true", help="the tiny test net instead (16x16, ~5k weights)")
    a = p.parse_args(argv)
    import onnx

    m = tiny(a.seed, a.batchnorm) if a.tiny else mobilenet_v2(a.width, a.resolution, a.seed, a.batchnorm)
    onnx.save(m, a.out)
    params = sum(int(np.prod(t.dims)) for t in m.graph.initializer if len(t.dims))  # not the 2 ReLU6 bounds
    ops = {}
    for n in m.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    dw = sum(1 for n in m.graph.node if n.op_type == "Conv" and any(x.name == "group" and x.i > 1 for x in n.attribute))
    print(f"wrote {a.out}: {m.graph.name}, {params:,} parameters, {dw} depthwise convs, "
          f"{', '.join(f'{v} {k}' for k, v in sorted(ops.items()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
