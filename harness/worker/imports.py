"""The user's own code, named by an import reference ``package.module:function``."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

from ..errors import one_line


def import_ref(
    ref: str, python_path: tuple[str, ...], what: str, error: type[Exception]
) -> Callable:
    """The function ``ref`` names, imported with the scenario's python_path first on sys.path.

    Args:
        ref: "package.module:function".
        python_path: folders to search first (absolute).
        what: "model" or "dataset", for the message.
        error: the exception to raise.

    Raises:
        error: the module cannot be imported, or has no such function (one line, with why).
    """
    for folder in reversed(python_path):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    module_name, _, function = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise error(f"{what} {ref}: cannot import {module_name}: {why(exc)}") from None
    found = getattr(module, function, None)
    if not callable(found):
        raise error(f"{what} {ref}: {module_name} has no function {function}")
    return found


def why(exc: BaseException) -> str:
    """An exception as ``Type: message`` on one line, at most 300 characters of message."""
    return one_line(exc, typed=True, limit=300)
