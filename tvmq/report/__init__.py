"""Report stage: tables, result objects and plots."""

from .table import markdown_table, text_table  # noqa: F401
