"""The small top-level values of a large JSON object, read without parsing its large ones.

A reader that needs a few fields of each record (``orch status`` over a ``trials.jsonl`` of
10,000 trials carrying long per-epoch histories) would spend nearly all its time turning those
histories into floats. ``skim_object`` parses the keys and the small values with the ``json``
module and leaves out every array or object value longer than a limit, which it only measures:
its brackets are found with ``str.find`` between one of its strings and the next, and a string
(whose brackets do not count) is skipped whole, so a skipped value is scanned at memory speed
and never parsed.
"""

from __future__ import annotations

import json
import re
from json.decoder import scanstring
from typing import Any

_SCAN = json.JSONDecoder().scan_once
_SPACE = " \t\n\r"
_OPEN = re.compile(r"[ \t\n\r]*\{[ \t\n\r]*")
_COLON = re.compile(r"[ \t\n\r]*:[ \t\n\r]*")
_AFTER = re.compile(r"[ \t\n\r]*([,}])[ \t\n\r]*")


def skim_object(line: bytes, limit: int) -> dict[str, Any]:
    """The JSON object in ``line`` without its array and object values longer than ``limit``
    characters (left out); ``ValueError`` when ``line`` is not one JSON object (``json`` checks
    what is kept; what is left out is only checked to end)."""
    text = line.decode("utf-8")
    out: dict[str, Any] = {}
    opening = _OPEN.match(text)
    if opening is None:
        raise ValueError("not a JSON object")
    pos = opening.end()
    if text[pos:pos + 1] == "}":
        return _end(text, pos + 1, out)
    while True:
        if text[pos:pos + 1] != '"':
            raise ValueError("an object key that is not a string")
        key, pos = scanstring(text, pos + 1)
        colon = _COLON.match(text, pos)
        if colon is None:
            raise ValueError("expected ':' after a key")
        pos = colon.end()
        if text[pos:pos + 1] in ("[", "{"):
            end = _nested_end(text, pos)
            if end - pos <= limit:
                out[key] = json.loads(text[pos:end])
            else:
                out.pop(key, None)  # as json.loads, the last of a repeated key counts
            pos = end
        else:
            out[key], pos = _value(text, pos)
        after = _AFTER.match(text, pos)
        if after is None:
            raise ValueError("expected ',' or '}' after a value")
        if after[1] == "}":
            return _end(text, after.end(), out)
        pos = after.end()


def _value(text: str, pos: int) -> tuple[Any, int]:
    """The string, number, true, false or null at ``pos``, and where it ends (``json``'s own scanner)."""
    try:
        return _SCAN(text, pos)
    except StopIteration:
        raise ValueError(f"no JSON value at {pos}") from None


def _end(text: str, pos: int, out: dict[str, Any]) -> dict[str, Any]:
    if text[pos:].strip(_SPACE):
        raise ValueError("more after the object")
    return out


def _string_end(text: str, start: int) -> int:
    """Just after the string whose opening quote is at ``start``."""
    pos = start + 1
    while True:
        quote = text.find('"', pos)
        if quote < 0:
            raise ValueError("a string that does not end")
        backslashes = 0
        while text[quote - 1 - backslashes] == "\\":  # an odd number of them escapes the quote
            backslashes += 1
        if backslashes % 2 == 0:
            return quote + 1
        pos = quote + 1


def _nested_end(text: str, start: int) -> int:
    """Just after the array or object that opens at ``start``: its brackets are walked stretch by
    stretch between its strings, each kind found with ``str.find``."""
    depth, pos = 0, start
    while True:
        quote = text.find('"', pos)
        stop = quote if quote >= 0 else len(text)
        end, depth = _walk(text, pos, stop, depth)
        if end:
            return end
        if quote < 0:
            raise ValueError("an array or object that does not end")
        pos = _string_end(text, quote)


def _walk(text: str, pos: int, stop: int, depth: int) -> tuple[int, int]:
    """Follow the brackets of ``text[pos:stop]`` (which holds no string) from ``depth``: just after
    the one that takes it to 0 (and 0), or 0 and the depth at ``stop``. The next bracket of each
    kind is kept (-1: none left) and looked for again only once passed."""
    square, curly = text.find("[", pos, stop), text.find("{", pos, stop)
    end_square, end_curly = text.find("]", pos, stop), text.find("}", pos, stop)
    while True:
        opening = square if curly < 0 or 0 <= square < curly else curly
        closing = end_square if end_curly < 0 or 0 <= end_square < end_curly else end_curly
        if opening >= 0 and (closing < 0 or opening < closing):
            depth += 1
            if opening == square:
                square = text.find("[", opening + 1, stop)
            else:
                curly = text.find("{", opening + 1, stop)
        elif closing >= 0:
            depth -= 1
            if depth == 0:
                return closing + 1, 0
            if closing == end_square:
                end_square = text.find("]", closing + 1, stop)
            else:
                end_curly = text.find("}", closing + 1, stop)
        else:
            return 0, depth
