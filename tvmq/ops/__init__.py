"""Operators: convolutions as TVM tensor expressions, each with a numpy reference."""

from .base import ArgSpec, OpSpec, make_op, variant_names  # noqa: F401
