"""Record stage: append-only JSON-lines tuning logs."""

from .log import SCHEMA_VERSION, append, best, make_record, read, read_dir  # noqa: F401
