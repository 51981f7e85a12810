"""The small top-level values of a large JSON object, read without parsing its large ones.

A reader that needs a few fields of each record (``orch status`` over a ``trials.jsonl`` of
10,000 trials carrying long per-epoch histories) would spend nearly all its time turning those
histories into floats. ``skim_object`` parses the object's keys and its small values with the
``json`` module and skips every array or object value longer than a limit by matching its
brackets (strings in it are skipped whole, so brackets inside them do not count): one regular
expression search per bracket or string, not per number.
"""

from __future__ import annotations

import json
import re
from typing import Any

_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")
_TOKEN = re.compile(r'["\[\]{}]')  # what changes the depth of a nested value
_STRING_END = re.compile(r'(?:[^"\\]|\\.)*"', re.DOTALL)  # from just after an opening quote


def skim_object(text: str, limit: int) -> dict[str, Any]:
    """The JSON object ``text`` without its array and object values longer than ``limit`` characters
    (left out); ``ValueError`` when ``text`` is not one JSON object."""
    pos = _skip_space(text, 0)
    if text[pos:pos + 1] != "{":
        raise ValueError("not a JSON object")
    out: dict[str, Any] = {}
    pos = _skip_space(text, pos + 1)
    if text[pos:pos + 1] == "}":
        return _end(text, pos + 1, out)
    while True:
        key, pos = _DECODER.raw_decode(text, pos)
        if not isinstance(key, str):
            raise ValueError("an object key that is not a string")
        pos = _skip_space(text, pos)
        if text[pos:pos + 1] != ":":
            raise ValueError("expected ':' after a key")
        pos = _skip_space(text, pos + 1)
        if text[pos:pos + 1] in ("[", "{"):
            end = _nested_end(text, pos)
            if end - pos <= limit:
                out[key] = json.loads(text[pos:end])
            pos = end
        else:
            out[key], pos = _DECODER.raw_decode(text, pos)
        pos = _skip_space(text, pos)
        if text[pos:pos + 1] == "}":
            return _end(text, pos + 1, out)
        if text[pos:pos + 1] != ",":
            raise ValueError("expected ',' or '}' after a value")
        pos = _skip_space(text, pos + 1)


def _skip_space(text: str, pos: int) -> int:
    match = _SPACE.match(text, pos)
    return match.end() if match else pos


def _end(text: str, pos: int, out: dict[str, Any]) -> dict[str, Any]:
    if text[_skip_space(text, pos):]:
        raise ValueError("more after the object")
    return out


def _nested_end(text: str, start: int) -> int:
    """Where the array or object opening at ``start`` ends (just after its closing bracket)."""
    depth = 0
    pos = start
    while True:
        token = _TOKEN.search(text, pos)
        if token is None:
            raise ValueError("an array or object that does not end")
        if token[0] == '"':
            string_end = _STRING_END.match(text, token.end())
            if string_end is None:
                raise ValueError("a string that does not end")
            pos = string_end.end()
            continue
        depth += 1 if token[0] in "[{" else -1
        pos = token.end()
        if depth == 0:
            return pos
