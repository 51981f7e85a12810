"""Records of the registry read back: JSON files and JSON-lines files, never trusted.

Only regular files are read, never through a link at their name (``files.open_file``). A file or
line that is not a JSON object is skipped and reported once on stderr (``report_skipped``), so one
bad file never takes a command down for everyone; a last line not yet ended (an append in
progress, or cut short) is left for later.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Iterator

from orchestrator.core.errors import OrchError
from orchestrator.core.files import open_file
from orchestrator.core.skim import skim_object

MAX_RECORD_BYTES = 64 * 2**20  # a JSON record file larger than this is not one orch wrote
NONSENSE = (ValueError, TypeError, KeyError, AttributeError)  # what reading a record edited into nonsense raises

_reported: set[str] = set()


def report_skipped(problem: str) -> None:
    """Say on stderr, once per process, that a reader skipped something it cannot read and went on;
    ``problem`` names the file (or the line of one) and what was wrong."""
    if problem not in _reported:
        _reported.add(problem)
        print(f"orch: skipped {problem}", file=sys.stderr, flush=True)


def read_json(path: Path) -> Any:
    """Read one JSON file of the registry; a file that is not JSON (or not UTF-8) is an error naming it."""
    with os.fdopen(open_file(path, os.O_RDONLY, "a JSON file"), "rb") as handle:
        data = handle.read(MAX_RECORD_BYTES + 1)
    if len(data) > MAX_RECORD_BYTES:
        raise OrchError(f"{path}: larger than {MAX_RECORD_BYTES // 2**20} MB; not a record orch writes")
    try:
        return json.loads(data)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise OrchError(f"{path}: not valid JSON ({exc}); was it edited by hand or cut short?") from None


_JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "true or false",
               type(None): "null"}


def read_record(path: Path) -> dict[str, Any]:
    """Read a JSON file of the registry that holds one object (every record of a job does)."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise OrchError(f"{path}: expected a JSON object, found {_JSON_TYPES.get(type(data), 'something else')}")
    return data


def read_optional_record(path: Path) -> dict[str, Any] | None:
    """The record in ``path``; None when there is none, or when it cannot be read (reported once)."""
    try:
        return read_record(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        report_skipped(f"{path}: {exc.strerror or exc}")
    except OrchError as exc:
        report_skipped(str(exc))
    return None


def _parse_line(path: Path, number: int, line: bytes, skim_over: int | None = None) -> dict[str, Any] | None:
    """The record on line ``number`` (1-based) of a JSON-lines file; None, reported once, when it is not one.
    With ``skim_over``, a longer line is skimmed: its array and object values longer than that are left out."""
    try:
        if skim_over is not None and len(line) > skim_over:
            record: Any = skim_object(line, skim_over)
        else:
            record = json.loads(line)
    except ValueError:
        report_skipped(f"{path} line {number}: not valid JSON (a line torn by a crash or a full disk?)")
        return None
    if not isinstance(record, dict):
        report_skipped(f"{path} line {number}: expected a JSON object, found "
                       f"{_JSON_TYPES.get(type(record), 'something else')}")
        return None
    return record


def read_json_lines(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the records of a JSON-lines file. A last line not yet ended (an append in progress, or cut
    short) is left for later; a complete line that is not a JSON object is skipped and reported once."""
    return (record for _, record in numbered_json_lines(path))


def numbered_json_lines(path: Path, skim_over: int | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """``read_json_lines`` with the (1-based) line number of each record, for readers that check them;
    with ``skim_over``, the large values of long lines are left out (``orchestrator.core.skim``)."""
    try:
        handle = os.fdopen(open_file(path, os.O_RDONLY, "a JSON-lines file"), "rb", buffering=2**20)
    except FileNotFoundError:
        return
    except OrchError as exc:  # a link, FIFO or folder planted in its place: no records, said once
        report_skipped(str(exc))
        return
    with handle:
        for number, line in enumerate(handle, 1):
            if line.endswith(b"\n") and not line.isspace():
                record = _parse_line(path, number, line, skim_over)
                if record is not None:
                    yield number, record


class LineTails:
    """JSON-lines files read incrementally: each call parses only what was appended since the last
    (the files are append-only); a last line not yet complete is read once it is. A file replaced by
    a new one (a trial run again in the same directory) is noticed by its first bytes and read anew.
    A line that is not a JSON object is skipped and reported once."""

    HEAD = 128

    def __init__(self) -> None:
        # path → head, offset, lines read, records
        self.seen: dict[Path, tuple[bytes, int, int, list[dict[str, Any]]]] = {}

    def read(self, path: Path) -> list[dict[str, Any]]:
        """Every complete record of ``path`` so far."""
        head, offset, count, records = self.seen.get(path, (b"", 0, 0, []))
        try:
            with os.fdopen(open_file(path, os.O_RDONLY, "a JSON-lines file"), "rb") as handle:
                if handle.read(len(head)) != head:
                    head, offset, count, records = b"", 0, 0, []
                handle.seek(offset)
                data = handle.read()
        except FileNotFoundError:
            self.seen.pop(path, None)
            return []
        except OrchError as exc:  # a link or a FIFO planted in its place: what was read stands
            report_skipped(str(exc))
            return records
        end = data.rfind(b"\n") + 1
        lines = data[:end].split(b"\n")[:-1]
        parsed = (_parse_line(path, count + n, line) for n, line in enumerate(lines, 1) if line.strip())
        records = records + [r for r in parsed if r is not None]
        head = head or data[:min(end, self.HEAD)]  # read from the start: the first complete bytes
        self.seen[path] = (head, offset + end, count + len(lines), records)
        return records
