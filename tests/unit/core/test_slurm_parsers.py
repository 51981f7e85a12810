"""SLURM command builders and parsers, on output captured from the test cluster (scripts/local-slurm)."""

from __future__ import annotations

import pytest

from orchestrator.core.errors import SchedulerError
from orchestrator.core.slurm import (
    build_sacct,
    build_sbatch,
    expand_array_id,
    parse_elapsed,
    parse_sacct,
    parse_sbatch,
    parse_scontrol_show,
    parse_size,
    parse_squeue,
)
from orchestrator.core.state import JobState, from_slurm
from tests.helpers import REPO

CAPTURED = REPO / "tests" / "unit" / "captured"


def rows(name: str) -> dict:
    return {(r.job_id, r.step): r for r in parse_sacct((CAPTURED / name).read_text())}


def test_sacct_jobs_steps_and_states() -> None:
    got = rows("sacct_states.txt")
    assert got[("1", None)].state == "COMPLETED" and got[("1", "batch")].max_rss_bytes == 1156 * 1024
    oom = got[("2", "batch")]
    assert (oom.state, oom.exit_code, oom.signal) == ("OUT_OF_MEMORY", 0, 125)
    cancelled = got[("3_1", None)]  # an array task cancelled while running
    assert (cancelled.state, cancelled.signal) == ("CANCELLED", 15)
    assert got[("5", None)].state == "TIMEOUT" and got[("5", "batch")].state == "CANCELLED"
    assert got[("2", None)].cpu_s == pytest.approx(0.329)


def test_sacct_terminal_states_and_oom_on_an_srun_step() -> None:
    got = rows("sacct_terminal.txt")
    assert (got[("21", None)].state, got[("21", None)].state_detail, got[("21", None)].reason) == (
        "CANCELLED", "by 0", "JobHeldUser")
    assert got[("23", None)].state == "TIMEOUT" and got[("23", None)].elapsed_s == 87
    assert (got[("25", None)].state, got[("25", None)].exit_code) == ("FAILED", 3)
    assert got[("26", None)].state == "FAILED" and got[("26", "0")].state == "OUT_OF_MEMORY"  # srun inside


def test_sacct_pending_reasons_and_array_ranges_expanded() -> None:
    got = rows("sacct_pending.txt")
    assert got[("21", None)].reason == "JobHeldUser"
    for task in ("20_1", "20_2", "20_3"):
        assert (got[(task, None)].state, got[(task, None)].reason) == ("PENDING", "JobArrayTaskLimit")
    assert got[("20_0", None)].state == "RUNNING" and got[("20_0", None)].start == "2026-11-21T21:44:12"


def test_squeue() -> None:
    got = {r.job_id: r for r in parse_squeue((CAPTURED / "squeue.txt").read_text())}
    assert (got["25"].state, got["25"].reason) == ("PENDING", "Resources")
    assert got["26"].reason == "Priority" and got["21"].reason == "JobHeldUser"
    assert got["20_3"].reason == "JobArrayTaskLimit" and got["20_0"].state == "RUNNING"


def test_scontrol_show_job() -> None:
    got = {r.job_id: r for r in parse_scontrol_show((CAPTURED / "scontrol_show_job.txt").read_text())}
    assert got["14_2"].state == "COMPLETED" and got["20_1"].state == "COMPLETED"
    assert (got["23"].state, got["23"].reason, got["23"].signal) == ("TIMEOUT", "TimeLimit", 15)
    assert (got["25"].state, got["25"].exit_code) == ("FAILED", 3)
    assert got["17"].state == "OUT_OF_MEMORY"


def test_sacct_line_with_missing_fields_is_an_error() -> None:
    with pytest.raises(SchedulerError, match="unexpected line"):
        parse_sacct("1|COMPLETED|0:0\n")


@pytest.mark.parametrize("job_id, tasks", [("20_[1-3%1]", ["20_1", "20_2", "20_3"]), ("7_[0,4-5]", ["7_0", "7_4", "7_5"]),
                                           ("7_2", ["7_2"]), ("7", ["7"])])
def test_array_ranges(job_id: str, tasks: list[str]) -> None:
    assert expand_array_id(job_id) == tasks


@pytest.mark.parametrize("name, state", [("CANCELLED by 1234", JobState.CANCELLED), ("COMPLETING", JobState.RUNNING),
                                         ("REQUEUED", JobState.PENDING), ("BOOT_FAIL", JobState.NODE_FAIL),
                                         ("DEADLINE", JobState.TIMEOUT), ("SOMETHING_NEW", JobState.UNKNOWN)])
def test_state_names(name: str, state: JobState) -> None:
    assert from_slurm(name) is state


@pytest.mark.parametrize("text, seconds", [("00:00:04", 4), ("1-02:03:04", 93784), ("12:30", 750),
                                           ("00:00.329", 0.329)])
def test_elapsed(text: str, seconds: float) -> None:
    assert parse_elapsed(text) == pytest.approx(seconds)


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
