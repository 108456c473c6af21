"""Top-1 accuracy and activation sparsity of an ONNX model on an ``.npz`` dataset (arrays ``x``, ``y``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..dataset import read_xy
from ..errors import TvmqError


def _data_input(model):
    inits = {t.name for t in model.graph.initializer}
    ins = [i for i in model.graph.input if i.name not in inits]
    if len(ins) != 1:
        raise TvmqError(f"--eval: the model has {len(ins)} data inputs; evaluation needs exactly one")
    return ins[0]


def _static_shape(value_info) -> list[int | None]:
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims]


def load_dataset(path, model) -> tuple[np.ndarray, np.ndarray]:
    """``x`` (float32) and ``y`` (int64) from ``path``, checked against the model's input shape."""
    if not Path(path).is_file():
        raise TvmqError(f"--eval: no such file {str(path)!r}")
    x, y = read_xy(path)
    inp = _data_input(model)
    want = _static_shape(inp)
    if x.ndim != len(want) or any(w is not None and w != s for w, s in zip(want[1:], x.shape[1:])):
        shown = ["N" if w is None else w for w in want]
        raise TvmqError(f"--eval: x has shape {list(x.shape)} but input {inp.name!r} of the model needs {shown}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TvmqError(f"--eval: x must be floating point, got {x.dtype}")
    if y.ndim != 1 or y.shape[0] != x.shape[0] or not np.issubdtype(y.dtype, np.integer):
        raise TvmqError(f"--eval: y must be {x.shape[0]} integer labels, got shape {list(y.shape)} dtype {y.dtype}")
    if x.shape[0] == 0:
        raise TvmqError("--eval: the dataset is empty (0 samples)")
    return x.astype(np.float32), y.astype(np.int64)


def session(model):
    """An onnxruntime CPU session on one thread (the machine is shared; results do not depend on it)."""
    import onnxruntime as ort  # lazy: onnxruntime is heavy and stays out of start-up

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise TvmqError(f"MODEL: onnxruntime cannot load the model ({str(e).splitlines()[0][:200]})") from None


def fixed_batch(model) -> int | None:
    """The batch size the model's data input fixes (e.g. 1 in the onnx package's light models), or None."""
    dims = _data_input(model).type.tensor_type.shape.dim
    return dims[0].dim_value if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0 else None


def run(model, x: np.ndarray, outputs=None, batch: int = 256, what: str = "--eval") -> list[np.ndarray]:
    """Model outputs (all, or the named ones) for ``x``, batch by batch (the model's own batch size when it
    fixes one; a short last batch is padded, its padding dropped). ``what`` names the step in errors."""
    sess = session(model)
    name = _data_input(model).name
    fixed = fixed_batch(model)
    batch = fixed or batch
    parts, counts = [], []
    try:
        for i in range(0, len(x), batch):
            chunk = x[i:i + batch]
            n = len(chunk)
            if fixed and n < fixed:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], fixed - n, axis=0)])
            parts.append(sess.run(outputs, {name: chunk}))
            counts.append(n)
    except Exception as e:
        raise TvmqError(f"{what}: onnxruntime failed on {len(x)} sample(s) in batches of {batch} "
                        f"({str(e).splitlines()[0][:200]})") from None
    return [np.concatenate([p[j][:n] for p, n in zip(parts, counts)]) for j in range(len(parts[0]))]


def top1(model, x: np.ndarray, y: np.ndarray) -> float:
    """Fraction of samples whose largest first-output score is the label."""
    logits = run(model, x, [model.graph.output[0].name])[0]
    if logits.ndim != 2 or int(y.max()) >= logits.shape[1] or int(y.min()) < 0:
        raise TvmqError(f"--eval: labels span {int(y.min())}..{int(y.max())} but the model scores "
                        f"{logits.shape[1] if logits.ndim == 2 else list(logits.shape)} classes")
    return float((logits.argmax(1) == y).mean())


def activation_sparsity(model, tensors: list[str], x: np.ndarray) -> dict[str, float]:
    """Fraction of zeros in each named intermediate tensor over the whole dataset."""
    import onnx  # lazy: onnx is heavy and stays out of start-up
    from onnx import TensorProto, helper  # lazy: onnx is heavy and stays out of start-up

    m = onnx.ModelProto()
    m.CopyFrom(model)
    graph_outs = {o.name for o in m.graph.output}
    data = _data_input(m).name
    wanted = [t for t in dict.fromkeys(tensors) if t != data]
    for t in wanted:
        if t not in graph_outs:
            m.graph.output.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, None))
    vals = dict(zip(wanted, run(m, x, wanted))) if wanted else {}
    vals[data] = x
    return {t: float(np.count_nonzero(vals[t] == 0) / vals[t].size) for t in tensors}
