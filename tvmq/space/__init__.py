"""Search spaces (knobs as data from ``schedules/``)."""

from .base import Space, config_key, template_for  # noqa: F401
