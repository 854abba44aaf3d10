"""The user's own code, named by an import reference ``package.module:function``."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path

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
    module_name, _, function = ref.partition(":")
    top = module_name.partition(".")[0]
    before = _IMPORTED_WITH.get(top, python_path)
    if before != python_path:
        # One process loads several scenarios' models (portability): another scenario's
        # module of the same name, from its folders, must not stand in for this one's.
        for folder in before:
            if folder in sys.path and folder not in python_path:
                sys.path.remove(folder)
        for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
            if _under(getattr(sys.modules[name], "__file__", None), before):
                del sys.modules[name]
        importlib.invalidate_caches()
    for folder in reversed(python_path):  # first, before any other folder
        if folder in sys.path:
            sys.path.remove(folder)
        sys.path.insert(0, folder)
    _IMPORTED_WITH[top] = python_path  # a half-imported package too
    try:
        module = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:
        raise error(f"{what} {ref}: cannot import {module_name}: {why(exc)}") from None
    found = getattr(module, function, None)
    if not callable(found):
        raise error(f"{what} {ref}: {module_name} has no function {function}")
    return found


def source_digest(ref: str) -> str | None:
    """A digest of the file of the (imported) module ``ref`` names: the user's code, as part
    of the workload's identity (its own file only, not what it imports). None where the module
    has no file or was not imported."""
    import hashlib

    module = sys.modules.get(ref.partition(":")[0])
    file = getattr(module, "__file__", None)
    if not file:
        return None
    try:
        return hashlib.sha256(Path(file).read_bytes()).hexdigest()[:16]
    except OSError:
        return None


def _under(file: str | None, folders: tuple[str, ...]) -> bool:
    """Whether a module's file lies in one of the folders (never the harness's own modules,
    keras' or an installed package's)."""
    if not file:
        return False
    path = Path(file).resolve()
    return any(path.is_relative_to(Path(folder).resolve()) for folder in folders)


def why(exc: BaseException) -> str:
    """An exception as ``Type: message`` on one line, at most 300 characters of message."""
    return one_line(exc, typed=True, limit=300)
