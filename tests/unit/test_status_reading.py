"""`orch status ID` reads a job's log by its end, whatever the log's size."""

from __future__ import annotations

from pathlib import Path

from orchestrator.track import status


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
