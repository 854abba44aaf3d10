"""Reading scenario files: every key checked against its declaration, the matrix expanded
into cells (each checked as a whole), and ``--set KEY=VALUE`` overrides.

A mistake becomes a :class:`ScenarioError` whose text is one line naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import itertools
import tomllib
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..results import RESERVED_FOLDERS
from .checks import nearest
from .keys import FIELDS, MATRIX_FIELDS, TOP_LEVEL_FIELDS, TRACKED, Cell, Key, cell_id
from .problems import label_problems, parallel_problems
from .vocab import NAME_RE, is_ref

TOP_LEVEL = ("name", "description", *TOP_LEVEL_FIELDS, "defaults", "matrix")


class ScenarioError(UserError):
    """A scenario file is unusable. ``str()`` is one line: ``FILE: key 'K': what is wrong``."""

    def __init__(self, path: str | Path, key: str | None, message: str):
        self.path = str(path)
        self.key = key
        self.message = message
        where = f"{self.path}: key '{key}': " if key else f"{self.path}: "
        super().__init__(where + message)


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    path: str
    cells: tuple[Cell, ...]
    # Where each value of the keys the quick check judges was given: (key, field, value),
    # e.g. ("matrix.model[0]", "model", "my_models:build"), so a bad one can be named.
    sources: tuple[tuple[str, str, Any], ...] = ()

    def where(self, field: str, value: Any) -> str:
        """The key that gave ``field = value`` (its first place), for a one-line error."""
        return next((k for k, f, v in self.sources if (f, v) == (field, value)), field)

    def cells_for(self, backend: str) -> list[Cell]:
        return [c for c in self.cells if backend in c.backends]


def read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ScenarioError(path, None, "no such file") from None
    except IsADirectoryError:
        raise ScenarioError(path, None, "is a directory, not a scenario file") from None
    except OSError as exc:
        raise ScenarioError(path, None, f"cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ScenarioError(path, None, "not a text file (expected UTF-8 TOML)") from None
    if "\x00" in text:
        raise ScenarioError(path, None, "not a text file (expected UTF-8 TOML)")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(path, None, f"malformed TOML: {exc}") from None


def load(path: str | Path) -> Scenario:
    """Read, validate and expand one scenario file.

    Args:
        path: the TOML file.

    Returns:
        The scenario with its cells, in matrix order.

    Raises:
        ScenarioError: anything wrong with the file, as one line.
    """
    path = Path(path)
    doc = read_toml(path)
    for key in doc:
        if key not in TOP_LEVEL:
            raise _unknown(path, key, key, TOP_LEVEL)
    name = doc.get("name", path.stem)
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ScenarioError(path, "name", "must be a word of letters, digits, '-', '_' or '.'")
    if name in RESERVED_FOLDERS:
        raise ScenarioError(
            path, "name", f"{name!r} names a results folder of the harness's own; choose another"
        )
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise ScenarioError(path, "description", "must be a string")

    defaults = _table(path, doc, "defaults")
    resolved: dict[str, Any] = {"python_path": _python_path(path, doc.get("python_path", []))}
    sources: list[tuple[str, str, Any]] = []
    for key, value in defaults.items():
        resolved[key] = _field(path, f"defaults.{key}", key, value, FIELDS)
        if key in TRACKED:
            sources.append((f"defaults.{key}", key, resolved[key]))

    matrix = _table(path, doc, "matrix")
    axes: list[tuple[str, list[Any]]] = []
    matrix_fields = {k: FIELDS[k] for k in MATRIX_FIELDS}
    for key, values in matrix.items():
        if key not in matrix_fields:
            raise _unknown(path, f"matrix.{key}", key, sorted(matrix_fields))
        if not isinstance(values, list) or not values:
            raise ScenarioError(path, f"matrix.{key}", "must be a non-empty list of values")
        checked = [
            _field(path, f"matrix.{key}[{i}]", key, v, matrix_fields) for i, v in enumerate(values)
        ]
        if key in TRACKED:
            sources += [(f"matrix.{key}[{i}]", key, v) for i, v in enumerate(checked)]
        axes.append((key, checked))

    cells = []
    seen: dict[str, int] = {}
    for combo in itertools.product(*(vals for _, vals in axes)):
        fields = dict(resolved)
        fields.update({key: value for (key, _), value in zip(axes, combo, strict=True)})
        ident = cell_id([(k, v) for (k, vals), v in zip(axes, combo, strict=True) if len(vals) > 1])
        if ident in seen:
            seen[ident] += 1
            ident = f"{ident}-{seen[ident]}"
        else:
            seen[ident] = 0
        cell = Cell(scenario=name, id=ident, **fields)
        _check_cell(path, cell)
        cells.append(cell)
    return Scenario(
        name=name,
        description=description,
        path=str(path),
        cells=tuple(cells),
        sources=tuple(sources),
    )


def load_all(paths: list[Path]) -> list[Scenario]:
    """Loads several scenario files; every one is checked before anything runs, and two
    scenarios may not share a name (their results would land in one folder)."""
    loaded = [load(p) for p in paths]  # every file validated before anything runs
    names: dict[str, str] = {}
    for sc in loaded:
        if sc.name in names:
            raise ScenarioError(
                sc.path, "name", f"{sc.name!r} is also the name of {names[sc.name]}"
            )
        names[sc.name] = sc.path
    return loaded


def override(sc: Scenario, settings: list[str], where: str = "--set") -> Scenario:
    """Returns ``sc`` with ``KEY=VALUE`` settings applied to every cell, ids unchanged.

    Values are TOML (``0.3``, ``"sgd"``, ``true``); a bare word is taken as a string. Each is
    validated like the same key in a file, and a mistake names ``where`` and the key.
    """
    changes: dict[str, Any] = {}
    for item in settings:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ScenarioError(where, None, f"expected KEY=VALUE, got {item!r}")
        try:
            value = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = text.strip()
        changes[key] = _field(Path(where), key, key, value, FIELDS)
    if not changes:
        return sc
    sources = [r for r in sc.sources if r[1] not in changes]
    sources += [(where, k, v) for k, v in changes.items() if k in TRACKED]
    cells = []
    for cell in sc.cells:
        cell = dataclasses.replace(cell, **changes)
        _check_cell(Path(where), cell)
        cells.append(cell)
    return dataclasses.replace(sc, cells=tuple(cells), sources=tuple(sources))


def _python_path(path: Path, value: Any) -> tuple[str, ...]:
    """The scenario's python_path, each folder relative to the scenario file, made absolute."""
    out = []
    for entry in _field(path, "python_path", "python_path", value, TOP_LEVEL_FIELDS):
        folder = (path.parent / entry).resolve()
        if not folder.is_dir():
            raise ScenarioError(path, "python_path", f"{entry!r}: no such folder ({folder})")
        out.append(str(folder))
    return tuple(out)


def _table(path: Path, doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise ScenarioError(path, key, f"must be a table ([{key}])")
    return value


def _field(path: Path, where: str, key: str, value: Any, allowed: dict[str, Key]) -> Any:
    """``value`` as its key's declaration checks it; a mistake names ``where``."""
    if key not in allowed:
        raise _unknown(path, where, key, sorted(allowed))
    try:
        return allowed[key].kind.check(value, key.replace("_", " "))
    except ValueError as exc:
        raise ScenarioError(path, where, str(exc)) from None


def _unknown(
    path: Path, where: str, key: str, accepted: tuple[str, ...] | list[str]
) -> ScenarioError:
    return ScenarioError(
        path, where, f"unknown key{nearest(key, accepted)}; accepted: {', '.join(accepted)}"
    )


def _check_cell(path: Path, cell: Cell) -> None:
    """Cross-field checks: what no single key can tell."""
    train, test = cell.split_sizes()
    if train is not None and cell.batch_size > train:
        raise ScenarioError(
            path,
            "batch_size",
            f"{cell.batch_size} exceeds the {train} training samples of {cell.dataset}"
            f" (cell {cell.id})",
        )
    if cell.data_path is not None and cell.dataset != "mnist":
        raise ScenarioError(path, "data_path", 'only applies to dataset = "mnist"')
    if cell.dataset == "synthetic" and (cell.train_samples or 0) > 10_000_000:
        raise ScenarioError(path, "train_samples", "at most 10,000,000 synthetic samples")
    labels = None if is_ref(cell.dataset) else "class ids"  # the user's: known once loaded
    for key, message in parallel_problems(cell, train, test) + label_problems(cell, labels):
        raise ScenarioError(path, key, f"{message} (cell {cell.id})")
