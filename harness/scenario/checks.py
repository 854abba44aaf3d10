"""What values a scenario key takes: one :class:`Kind` per sort of value, its rule stated once.

A kind's ``check`` validates a value from a file or ``--set`` (a mistake is a ``ValueError``
whose text the user reads, after the file and the key), its ``schema`` is the same rule as
JSON Schema, and ``to_json``/``from_json`` carry a checked value to and from a result file. A
key's declaration (keys.py) names its kind with its bounds, e.g. ``Int(1)``.
"""

from __future__ import annotations

import abc
import dataclasses
import difflib
from typing import Any

from ..backends import ALIASES as BACKEND_ALIASES
from ..backends import NAMES as BACKENDS
from .vocab import DEVICE_RE, METRICS, REF_RE, Named


def nearest(value: Any, choices: tuple[str, ...] | list[str]) -> str:
    """`` (did you mean 'x'?)`` for a close choice, or nothing."""
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _a(what: str) -> str:
    return "an" if what[0] in "aeiou" else "a"


class Kind(abc.ABC):
    """The values one key takes."""

    @abc.abstractmethod
    def check(self, value: Any, what: str) -> Any:
        """The value as a cell holds it; ``ValueError`` if it is not one. ``what``: the key
        in words ("batch size")."""

    @abc.abstractmethod
    def schema(self) -> dict[str, Any]:
        """The same rule as JSON Schema (draft 2020-12)."""

    def to_json(self, value: Any) -> Any:
        return value

    def from_json(self, value: Any) -> Any:
        return value


@dataclasses.dataclass(frozen=True)
class Int(Kind):
    """An integer >= ``minimum``; with ``optional``, also None (the backend's own choice)."""

    minimum: int
    optional: bool = False

    def check(self, value: Any, what: str) -> int | None:
        if value is None and self.optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be an integer >= {self.minimum}, got {value!r}")
        if value < self.minimum:
            raise ValueError(f"must be an integer >= {self.minimum}, got {value}")
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.minimum}


@dataclasses.dataclass(frozen=True)
class Number(Kind):
    """A number >= ``minimum`` (> with ``exclusive``), held as a float."""

    minimum: int
    exclusive: bool = False

    def check(self, value: Any, what: str) -> float:
        number = not isinstance(value, bool) and isinstance(value, int | float)
        if not number or value < self.minimum or self.exclusive and value == self.minimum:
            sign = ">" if self.exclusive else ">="
            raise ValueError(f"must be a number {sign} {self.minimum}, got {value!r}")
        return float(value)

    def schema(self) -> dict[str, Any]:
        bound = "exclusiveMinimum" if self.exclusive else "minimum"
        return {"type": "number", bound: self.minimum}


@dataclasses.dataclass(frozen=True)
class Bool(Kind):
    def check(self, value: Any, what: str) -> bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"must be true or false, got {value!r}")

    def schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


@dataclasses.dataclass(frozen=True)
class BoolOrAuto(Kind):
    """true, false or "auto" (Keras decides, per backend)."""

    def check(self, value: Any, what: str) -> str | bool:
        if value == "auto" or isinstance(value, bool):
            return value
        raise ValueError(f'must be true, false or "auto", got {value!r}')

    def schema(self) -> dict[str, Any]:
        return {"anyOf": [{"type": "boolean"}, {"const": "auto"}]}


@dataclasses.dataclass(frozen=True)
class FilePath(Kind):
    """A file's path, or None."""

    def check(self, value: Any, what: str) -> str | None:
        if value is not None and not isinstance(value, str):
            raise ValueError(f"must be a string (a file path), got {value!r}")
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "string"}


@dataclasses.dataclass(frozen=True)
class Folders(Kind):
    """A list of folders (the scenario's loader makes each absolute)."""

    def check(self, value: Any, what: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError('must be a list of folders, e.g. ["."]')
        return tuple(value)

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "items": {"type": "string"}}

    def to_json(self, value: Any) -> Any:
        return list(value)

    def from_json(self, value: Any) -> Any:
        return tuple(value)


@dataclasses.dataclass(frozen=True)
class Choice(Kind):
    """One of ``choices``."""

    choices: tuple[str, ...]

    def check(self, value: Any, what: str) -> str:
        if not isinstance(value, str) or value not in self.choices:
            hint = nearest(value, self.choices)
            raise ValueError(f"unknown {what} {value!r}{hint}; accepted: {', '.join(self.choices)}")
        return value

    def schema(self) -> dict[str, Any]:
        return {"enum": list(self.choices)}


@dataclasses.dataclass(frozen=True)
class Device(Kind):
    """cpu, gpu or gpu:N."""

    def check(self, value: Any, what: str) -> str:
        if not isinstance(value, str) or not DEVICE_RE.match(value):
            raise ValueError(f"unknown device {value!r}; accepted: cpu, gpu, gpu:N (N = 0, 1, ...)")
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": DEVICE_RE.pattern}


@dataclasses.dataclass(frozen=True)
class BuiltInOrRef(Kind):
    """A built-in name from ``choices``, or an import reference "package.module:function"."""

    choices: tuple[str, ...]
    what: str

    def check(self, value: Any, _: str) -> str:
        if isinstance(value, str) and (value in self.choices or REF_RE.match(value)):
            return value
        raise ValueError(
            f"unknown {self.what} {value!r}{self._hint(value)}; accepted: "
            f'{", ".join(self.choices)}, or an import reference "package.module:function"'
        )

    def _hint(self, value: Any) -> str:
        """A close built-in name, or the import reference a dotted name was likely meant as."""
        if isinstance(value, str) and "." in value and ":" not in value:
            module, _, function = value.rpartition(".")
            if REF_RE.match(f"{module}:{function}"):
                return f' (did you mean "{module}:{function}"?)'
        return nearest(value, self.choices)

    def schema(self) -> dict[str, Any]:
        return {
            "anyOf": [{"enum": list(self.choices)}, {"type": "string", "pattern": REF_RE.pattern}]
        }


@dataclasses.dataclass(frozen=True)
class NameOrTable(Kind):
    """A Keras name from ``choices``, or a table of it with its constructor's arguments."""

    choices: tuple[str, ...]
    what: str
    example: str

    def check(self, value: Any, _: str) -> Named:
        what, pick = self.what, Choice(self.choices)
        if isinstance(value, str):
            return Named(pick.check(value, what))
        if isinstance(value, dict):
            if "name" not in value:
                raise ValueError(f'{_a(what)} {what} table needs a "name", e.g. {self.example}')
            name = pick.check(value["name"], what)
            kwargs = {}
            for key, arg in value.items():
                if key == "name":
                    continue
                if not isinstance(arg, bool | int | float | str):
                    raise ValueError(f"{what} argument {key!r} must be a number, bool or string")
                kwargs[key] = arg
            return Named(name, tuple(sorted(kwargs.items())))
        raise ValueError(f"must be {_a(what)} {what} name or a table with a name, got {value!r}")

    def schema(self) -> dict[str, Any]:
        names = list(self.choices)
        table = {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"enum": names}},
            "additionalProperties": {"type": ["number", "boolean", "string"]},
        }
        return {"anyOf": [{"enum": names}, table]}

    def to_json(self, value: Any) -> Any:
        return value.to_json()

    def from_json(self, value: Any) -> Any:
        return Named.from_json(value)


class _Names(Kind):
    """A list of names, held as a tuple (a result file holds a list)."""

    def to_json(self, value: Any) -> Any:
        return list(value)

    def from_json(self, value: Any) -> Any:
        return tuple(value)


@dataclasses.dataclass(frozen=True)
class MetricNames(_Names):
    """Keras metric names (a lone name is a list of one), each once."""

    def check(self, value: Any, what: str) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ValueError(f'must be a list of metric names, e.g. ["accuracy"], got {value!r}')
        for item in value:
            Choice(METRICS).check(item, "metric")
        return tuple(dict.fromkeys(value))

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "items": {"enum": list(METRICS)}}


@dataclasses.dataclass(frozen=True)
class BackendNames(_Names):
    """Backends by name or alias (``tf``), held by name, each once; at least one."""

    def check(self, value: Any, what: str) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            raise ValueError(f"must be a list of backends ({', '.join(BACKENDS)})")
        out = []
        for item in value:
            if item not in BACKEND_ALIASES:
                hint = nearest(item, BACKENDS)
                raise ValueError(f"unknown backend {item!r}{hint}; accepted: {', '.join(BACKENDS)}")
            out.append(BACKEND_ALIASES[item])
        return tuple(dict.fromkeys(out))

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "items": {"enum": sorted(BACKEND_ALIASES)}, "minItems": 1}
