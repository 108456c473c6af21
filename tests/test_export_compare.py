"""export/compare.py and export/relax_kernels.py's pure parts: datasets checked, kernels' variants (pure Python)."""

import numpy as np
import pytest

from tvmq.errors import TvmqError
from tvmq.export.compare import load_data
from tvmq.export.onnx_prep import ModelOptions
from tvmq.export.kernel_shapes import model_variant_params


def test_dataset_is_checked_against_the_models_input(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, x=np.zeros((4, 1, 8, 8), np.float32), y=np.arange(4))
    x, y = load_data(p, [1, 1, 8, 8])
    assert x.shape == (4, 1, 8, 8) and x.dtype == np.float32 and list(y) == [0, 1, 2, 3]
    with pytest.raises(TvmqError, match=r"the model takes \[N, 3, 8, 8\]"):
        load_data(p, [1, 3, 8, 8])


@pytest.mark.parametrize("quantize,bits,want", [
    ("none", None, ("float", {})),
    ("kmeans", 5, ("codebook", {"bits": 5})),
    ("kmeans", 4, ("codebook4", {"bits": 4})),
    ("int8", None, ("int8", {})),
    ("kmeans_int8", 4, ("codebook_int8", {"bits": 4})),
    ("kmeans_int8", 3, ("codebook_int8", {"bits": 3, "planar": 0})),
])
def test_each_quantization_runs_its_variant(quantize, bits, want):
    assert model_variant_params(ModelOptions(quantize=quantize, bits=bits).check()) == want
