"""`orch status` on what the registry holds: a corrupt entry is one clear error; a job's log is read by
its end, whatever its size."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.core.registry import create_entry
from orchestrator.track import status


def test_status_of_a_corrupt_entry_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = create_entry(tmp_path, "602", {"submission.json": "{"})
    assert main(["--registry", str(tmp_path), "status", "602"]) == 1
    assert capsys.readouterr().err.startswith(f"orch: error: {bad.submission}: not valid JSON")


def test_the_log_tail_is_its_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "job.out"
    log.write_text("".join(f"line {n}\n" for n in range(40)) + "no newline at the end")
    assert status.log_tail(log) == [f"line {n}" for n in range(26, 40)] + ["no newline at the end"]
    assert status.log_tail(tmp_path / "missing.out") == []


def test_a_log_of_one_huge_line_is_read_only_by_its_end(tmp_path: Path, monkeypatch) -> None:
    log = tmp_path / "job.out"
    log.write_bytes(b"x" * (8 * status.LOG_BYTES) + b"\xff the end\n")
    read: list[int] = []
    real_read = status.os.read
    monkeypatch.setattr(status.os, "read", lambda fd, n: read.append(n) or real_read(fd, n))
    (line,) = status.log_tail(log)
    assert line.endswith("\ufffd the end") and len(line) < status.LOG_BYTES
    assert sum(read) <= status.LOG_BYTES
