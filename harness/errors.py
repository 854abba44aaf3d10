"""Errors a user can fix, and the one line of text any exception is shown as.

Every error a user can fix (a bad scenario key, an unreadable result, a bad option) is a
``UserError``: the CLI prints it as one line and exits 2, never with a traceback.
"""

from __future__ import annotations


class UserError(ValueError):
    """Input the user can fix; its text is the whole message (one line, naming file and key)."""


class UsageError(UserError):
    """A bad command line, or options that contradict each other or the files they name."""


def one_line(exc: BaseException, *, typed: bool = False, limit: int | None = None) -> str:
    """An exception's message on one line (whitespace collapsed).

    Args:
        exc: the exception.
        typed: prefix the class name (``ValueError: ...``), for messages shown away from code
            that would say what failed.
        limit: keep at most this many characters of the message (not counting the prefix).

    Returns:
        The message; the class name alone when the message is empty.
    """
    text = " ".join(str(exc).split())[:limit]
    name = type(exc).__name__
    if not text:
        return name
    return f"{name}: {text}" if typed else text
