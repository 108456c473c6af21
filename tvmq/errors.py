"""The one error type users see: a single line naming the field and the value."""


# Errors from the board or the RPC tracker, not from the kernel, start with this: worth measuring again.
BOARD_ERROR_PREFIX = "rpc: "


class TvmqError(ValueError):
    """A user-facing error; the CLI prints it as one line, without a traceback."""


def one_line(e: BaseException, limit: int = 400) -> str:
    """An exception as one line: its first and last meaningful lines, without traceback lines.

    TVM puts what went wrong first and the failing call's signature last; Python exceptions
    have one line. An exception with no message gives its type's name.
    """
    lines = [ln.strip() for ln in str(e).strip().splitlines()
             if ln.strip() and not ln.lstrip().startswith(("Traceback", "File ", "^"))]
    if not lines:
        return type(e).__name__
    return (lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}")[:limit]
