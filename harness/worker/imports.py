"""The user's own code, named by an import reference ``package.module:function``."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

from ..errors import one_line

# The python_path each top-level module of the user's was imported with.
_IMPORTED_WITH: dict[str, tuple[str, ...]] = {}


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
    for folder in reversed(python_path):  # first, before any other scenario's
        if folder in sys.path:
            sys.path.remove(folder)
        sys.path.insert(0, folder)
    module_name, _, function = ref.partition(":")
    top = module_name.partition(".")[0]
    if _IMPORTED_WITH.get(top, python_path) != python_path:
        # One process checks several scenarios' references: another's module of the same name
        # must not stand in for this one's.
        for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
            del sys.modules[name]
        importlib.invalidate_caches()
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise error(f"{what} {ref}: cannot import {module_name}: {why(exc)}") from None
    _IMPORTED_WITH[top] = python_path
    found = getattr(module, function, None)
    if not callable(found):
        raise error(f"{what} {ref}: {module_name} has no function {function}")
    return found


def why(exc: BaseException) -> str:
    """An exception as ``Type: message`` on one line, at most 300 characters of message."""
    return one_line(exc, typed=True, limit=300)
