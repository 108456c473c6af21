"""Search spaces (knobs as data from ``schedules/``)."""

from .base import Space, config_key  # noqa: F401
