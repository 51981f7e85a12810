"""Reading JSON objects strictly: every key known, every value the right type.

``Section`` wraps one JSON object of a config with its JSON path. Each ``take``
consumes a key; ``finish`` rejects whatever was not consumed, with a
"did you mean" drawn from the keys the section knows.
"""

from __future__ import annotations

import difflib
import json
import math
from typing import Any, Callable, Iterable

from orchestrator.core.errors import InputError

MISSING: Any = object()


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``"; did you mean X?"`` for the closest known name, or ``""``."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def json_type(value: Any) -> str:
    """The JSON word for a value's type, for messages."""
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return "a number"
    return {dict: "an object", list: "a list", str: "a string"}.get(type(value), type(value).__name__)


def json_preview(value: Any, limit: int = 60) -> str:
    """A short JSON rendering of ``value`` for error messages."""
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class Section:
    """One JSON object of a config, read key by key."""

    def __init__(self, data: Any, path: str, source: str) -> None:
        self.path = path
        self.source = source
        if not isinstance(data, dict):
            self.fail(f"expected an object, got {json_type(data)}")
        self.data: dict[str, Any] = data
        self.known: list[str] = []

    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, message: str, key: str | None = None) -> None:
        where = self.key_path(key) if key is not None else (self.path or "(top level)")
        raise InputError(self.source, f"{where}: {message}")

    def take(self, key: str, check: Callable[[Any], bool], expected: str, default: Any = MISSING) -> Any:
        """The value of ``key`` if ``check`` accepts it; ``default`` when absent (required if none)."""
        self.known.append(key)
        if key not in self.data:
            if default is MISSING:
                self._missing(key, f"expected {expected}")
            return default
        value = self.data[key]
        if not check(value):
            self.fail(f"expected {expected}, got {json_preview(value)}", key)
        return value

    def section(self, key: str, default: Any = MISSING) -> "Section":
        """The sub-object at ``key`` as a ``Section`` (an empty one when absent and allowed)."""
        self.known.append(key)
        if key not in self.data:
            if default is MISSING:
                self._missing(key, "expected an object")
            return Section({}, self.key_path(key), self.source)
        return Section(self.data[key], self.key_path(key), self.source)

    def _missing(self, key: str, expected: str) -> None:
        """A required key is absent: a misspelling of it is the likelier story, so say that first."""
        misspelt = difflib.get_close_matches(key, [k for k in self.data if k not in self.known], n=1, cutoff=0.6)
        if misspelt:
            self.fail(f"unknown key; did you mean {key}?", misspelt[0])
        self.fail(f"required key is missing; {expected}", key)

    def finish(self) -> None:
        """Reject any key no ``take``/``section`` asked for."""
        for key in self.data:
            if key not in self.known:
                self.fail(f"unknown key{did_you_mean(key, self.known)}", key)


def one_of(*values: Any) -> Callable[[Any], bool]:
    return lambda v: v in values


def string(v: Any) -> bool:
    return isinstance(v, str) and v != ""


def boolean(v: Any) -> bool:
    return isinstance(v, bool)


def int_at_least(low: int) -> Callable[[Any], bool]:
    return lambda v: is_int(v) and v >= low


def optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)
