"""tvmq: a compiler-based schedule explorer for quantized and codebook-indexed convolutions."""

__version__ = "0.1.0"

from .errors import TvmqError  # noqa: E402,F401
