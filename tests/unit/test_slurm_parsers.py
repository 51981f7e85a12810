"""SLURM command builders and parsers, on output captured from the test cluster (scripts/local-slurm)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import SchedulerError
from orchestrator.slurm import (build_sacct, build_sbatch, parse_elapsed, parse_sacct, parse_sbatch, parse_size)

CAPTURED = Path(__file__).resolve().parent / "captured"


def test_sacct_jobs_steps_and_states() -> None:
    rows = {(r.job_id, r.step): r for r in parse_sacct((CAPTURED / "sacct_states.txt").read_text())}
    assert rows[("1", None)].state == "COMPLETED" and rows[("1", "batch")].max_rss_bytes == 1156 * 1024
    oom = rows[("2", "batch")]
    assert (oom.state, oom.exit_code, oom.signal) == ("OUT_OF_MEMORY", 0, 125)
    cancelled = rows[("3_1", None)]
    assert (cancelled.state, cancelled.state_detail) == ("CANCELLED", "by 0")
    assert rows[("3_1", "batch")].signal == 15
    assert rows[("3_0", None)].state == "RUNNING" and rows[("3_0", None)].end == "Unknown"
    assert rows[("3_0", None)].max_rss_bytes is None


def test_sacct_line_with_missing_fields_is_an_error() -> None:
    with pytest.raises(SchedulerError, match="unexpected line"):
        parse_sacct("1|COMPLETED|0:0\n")


@pytest.mark.parametrize("text, seconds", [("00:00:04", 4), ("1-02:03:04", 93784), ("12:30", 750)])
def test_elapsed(text: str, seconds: int) -> None:
    assert parse_elapsed(text) == seconds


@pytest.mark.parametrize("text, size", [("1156K", 1156 * 1024), ("2.5G", int(2.5 * 1024**3)), ("", None),
                                        ("512", 512)])
def test_sizes(text: str, size: int | None) -> None:
    assert parse_size(text) == size


def test_sbatch_builders_and_parser() -> None:
    assert build_sbatch() == ["sbatch", "--parsable", "--hold"]
    assert parse_sbatch("17832069\n") == "17832069"
    assert parse_sbatch("17832069;cluster\n") == "17832069"
    with pytest.raises(SchedulerError, match="unexpected output"):
        parse_sbatch("Submitted batch job 17832069\n")
    argv = build_sacct(["17832069", "17832070_2"], "2026-11-20T00:00:00")
    assert argv[-2:] == ["--jobs", "17832069,17832070_2"] and "--parsable2" in argv
