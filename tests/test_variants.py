"""The variant table: every name resolves to a real operator, template and space (pure Python)."""

import pytest

from tvmq import variants
from tvmq.errors import TvmqError
from tvmq.space.base import SCHEDULES_DIR


def test_every_variant_has_a_registered_operator_and_a_space_file():
    from tvmq.ops import variant_names

    ops = variant_names()
    for v in variants.VARIANTS.values():
        assert v.op in ops, v
        assert (SCHEDULES_DIR / f"{v.template}.json").exists(), v


def test_units_templates_and_exports():
    assert variants.rate_unit("int8") == variants.rate_unit("codebook_int8") == "GOPS"
    assert variants.rate_unit("float") == variants.rate_unit("codebook4") == "GFLOPS"
    assert variants.template_of("im2col") == variants.template_of("im2col_float") == "im2col_gemm"
    assert "im2col" not in variants.exportable() and "codebook4" in variants.exportable()


def test_every_model_quantization_runs_a_known_variant():
    for q in variants.QUANTIZATIONS.values():
        assert q.variant in variants.VARIANTS
    assert variants.model_variant("kmeans", 4) == "codebook4"
    assert variants.model_variant("kmeans", 5) == "codebook"
    assert variants.model_variant("kmeans_int8", 4) == "codebook_int8"


def test_unknown_variant_is_one_line_naming_the_valid_ones():
    with pytest.raises(TvmqError, match="unknown variant 'fp8'; valid variants are"):
        variants.get("fp8")


def test_siblings_share_the_template_and_the_arithmetic():
    assert "codebook" in variants.siblings("float") and "float" in variants.siblings("codebook")
    assert "int8" not in variants.siblings("float") and "float" not in variants.siblings("int8")
    assert "im2col" not in variants.siblings("float")  # another template
    assert "int8" not in variants.siblings("int8")
