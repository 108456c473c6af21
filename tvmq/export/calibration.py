"""The inputs an int8 model export calibrates its uint8 activations on (and onnxruntime's int8 model too)."""

from __future__ import annotations

import numpy as np

from ..quantize import load_dataset


def calibration_inputs(file, samples: int, seed: int, shape, model, x_range=(-1.0, 1.0)) -> tuple[np.ndarray, dict]:
    """(inputs, where they came from): the first ``samples`` of ``file`` (an .npz with ``x``), else ``samples``
    seeded uniform inputs over ``x_range`` (``default_rng(seed)``) of the model's input ``shape``."""
    if file:
        x, _ = load_dataset(file, model)
        x = x[:samples]
        return x, {"file": str(file), "samples": int(len(x))}
    lo, hi = x_range
    x = np.random.default_rng(seed).uniform(lo, hi, (samples, *shape[1:])).astype(np.float32)
    return x, {"file": None, "samples": int(samples), "random_range": [lo, hi], "seed": int(seed)}
