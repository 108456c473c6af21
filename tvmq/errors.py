"""The one error type users see: a single line naming the field and the value."""


class TvmqError(ValueError):
    """A user-facing error; the CLI prints it as one line, without a traceback."""
