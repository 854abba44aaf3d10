"""The Keras backends the harness runs: the one list of their names, aliases and packages.

Everything else (scenario validation, ``--backend``, report order and colours, the
portability matrix, the environment record) reads the backends from here. Reading what is
installed uses package metadata only: no backend is imported.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os

from .errors import UsageError


@dataclasses.dataclass(frozen=True)
class Backend:
    name: str  # the KERAS_BACKEND value
    aliases: tuple[str, ...]  # also accepted in scenario files and --backend
    distributions: tuple[str, ...]  # pip packages that provide it (any one will do)
    versions: tuple[str, ...]  # packages whose versions identify an install
    color: str  # in the HTML report's charts


ALL = (
    Backend(
        "tensorflow",
        ("tf",),
        ("tensorflow", "tensorflow-cpu", "tensorflow-gpu"),
        ("tensorflow", "tensorflow-cpu"),
        "#e8710a",
    ),
    Backend("jax", (), ("jax",), ("jax", "jaxlib"), "#1a73e8"),
    Backend("torch", (), ("torch",), ("torch",), "#d93025"),
)
NAMES = tuple(b.name for b in ALL)  # in report order
BY_NAME = {b.name: b for b in ALL}
ALIASES = {alias: b.name for b in ALL for alias in (b.name, *b.aliases)}
ORDER = {name: i for i, name in enumerate(NAMES)}


def rank(name: str) -> int:
    """Where a backend sorts in tables: in NAMES' order, an unknown name last."""
    return ORDER.get(name, len(ORDER))


def package_version(dist: str) -> str | None:
    """An installed distribution's version from its metadata (None if not installed)."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def installed_version(backend: str) -> str | None:
    """The installed version of a backend's package, read without importing it."""
    return next(filter(None, map(package_version, BY_NAME[backend].distributions)), None)


def installed_backends() -> list[str]:
    return [b for b in NAMES if installed_version(b) is not None]


def backend_versions(backend: str) -> dict[str, str]:
    """Versions that identify a backend install (for the environment fingerprint)."""
    found = {dist: package_version(dist) for dist in BY_NAME[backend].versions}
    return {dist: v for dist, v in found.items() if v is not None}


def resolve_backends(requested: str | None, installed: list[str] | None = None) -> list[str]:
    """Which backends to run: --backend, else KERAS_BACKEND, else the only one installed.

    Args:
        requested: a backend name, a comma-separated list, "all", or None.
        installed: installed backends (looked up when None).

    Raises:
        UsageError: an unknown or uninstalled backend, or no way to choose one.
    """
    installed = installed_backends() if installed is None else installed
    source = "--backend"
    if not requested:
        requested, source = os.environ.get("KERAS_BACKEND"), "KERAS_BACKEND"
    if not requested:
        if len(installed) == 1:
            return installed
        if not installed:
            raise UsageError(f"no Keras backend is installed ({', '.join(NAMES)})")
        raise UsageError(
            f"several backends are installed ({', '.join(installed)}); choose with --backend "
            "NAME[,NAME] or --backend all"
        )
    if requested == "all":
        if not installed:
            raise UsageError(f"no Keras backend is installed ({', '.join(NAMES)})")
        return installed
    chosen = []
    for name in requested.split(","):
        name = name.strip()
        if name not in ALIASES:
            raise UsageError(f"{source}: unknown backend {name!r}; accepted: {', '.join(NAMES)}")
        backend = ALIASES[name]
        if backend not in installed:
            have = ", ".join(installed) or "none"
            raise UsageError(
                f"{source}: backend {backend!r} is not installed here (installed: {have})"
            )
        chosen.append(backend)
    return list(dict.fromkeys(chosen))
