"""Build stage: compile scheduled candidates into libraries."""

from .base import Builder, build_one  # noqa: F401
