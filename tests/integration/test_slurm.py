"""End to end on a real SLURM (scripts/local-slurm): submission, arrays, memory kills, time limits,
cancellation, and the stored script being the one that ran. Tiny data, real Keras."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from orchestrator.core.config import PLANES
from orchestrator.core.records import read_json_lines
from orchestrator.core.registry import JobPaths
from orchestrator.core.slurm import SacctRow, run_sacct

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("slurm")]
TERMINAL = {"COMPLETED", "FAILED", "OUT_OF_MEMORY", "TIMEOUT", "CANCELLED", "NODE_FAIL", "PREEMPTED"}


def submit(orch: Callable[..., tuple[int, str, str]], path: Path) -> list[str]:
    code, out, err = orch("submit", str(path))
    assert code == 0, err
    assert "to SLURM:" in out
    return out.split("to SLURM: ")[1].split("\n")[0].split()


def rows_of(job_id: str) -> list[SacctRow]:
    return [r for r in run_sacct([job_id.split("_")[0]], "now-1hour") if r.job_id == job_id]


def follow(job_id: str, timeout_s: float = 300) -> tuple[list[str], list[SacctRow]]:
    """Poll sacct until the job is terminal; the job-line states seen on the way, and its final rows."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = rows_of(job_id)
        job = next((r for r in rows if r.step is None), None)
        if job and (not seen or seen[-1] != job.state):
            seen.append(job.state)
        if job and job.state in TERMINAL:
            return seen, rows
        time.sleep(0.5)
    pytest.fail(f"job {job_id} not finished after {timeout_s} s; states seen {seen}")


def test_submit_runs_to_completion_and_the_registry_has_the_search(
        small_config: Callable[..., Path], workdir: Path, orch: Callable[..., tuple[int, str, str]]) -> None:
    [job_id] = submit(orch, small_config("e2e"))
    assert job_id.isdigit()
    seen, rows = follow(job_id)
    assert seen[-1] == "COMPLETED" and ("RUNNING" in seen or "PENDING" in seen), seen
    paths = JobPaths(workdir / "registry", job_id)
    assert [r["trial"] for r in read_json_lines(paths.trials)] == [0, 1]
    assert all(r["job_id"] == job_id for r in read_json_lines(paths.trials))
    result = json.loads(paths.result.read_text())
    assert result["job_id"] == job_id and result["trials_total"] == 2
    assert Path(result["artifacts"]["model"]).exists()
    assert json.loads(paths.run.read_text())["threads"] == 1  # from SLURM_CPUS_PER_TASK
    ran = subprocess.run(["scontrol", "write", "batch_script", job_id, "-"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    assert ran == paths.script.read_text()  # the stored script is exactly what ran
    assert "completed: best trial" in paths.log.read_text()


def test_a_plane_list_is_an_array_with_one_entry_and_plane_per_task(
        small_config: Callable[..., Path], workdir: Path, orch: Callable[..., tuple[int, str, str]]) -> None:
    job_ids = submit(orch, small_config("uvx", plane=["U", "V", "X"], evals=1, epochs=1))
    base = job_ids[0].split("_")[0]
    assert job_ids == [f"{base}_0", f"{base}_1", f"{base}_2"]
    for index, job_id in enumerate(job_ids):
        _, rows = follow(job_id)
        assert rows[0].state == "COMPLETED", rows
        paths = JobPaths(workdir / "registry", job_id)
        assert json.loads(paths.data_record.read_text())["plane"] == PLANES[index]
        result = json.loads(paths.result.read_text())
        metadata = np.load(result["artifacts"]["predictions"])["metadata"]
        assert set(metadata[:, 12]) == {float(index)}  # column 12: plane id of every test sample


def test_too_little_memory_ends_out_of_memory(small_config: Callable[..., Path], workdir: Path,
                                             orch: Callable[..., tuple[int, str, str]]) -> None:
    [job_id] = submit(orch, small_config("oom", resources={"mem_gb": 0.25}))
    _, rows = follow(job_id)
    assert "OUT_OF_MEMORY" in {r.state for r in rows}, rows
    trials = list(read_json_lines(JobPaths(workdir / "registry", job_id).trials))
    assert trials and trials[0]["status"] == "failed" and "SIGKILL" in trials[0]["reason"]


def test_a_short_time_limit_ends_timeout_with_state_saved(small_config: Callable[..., Path], workdir: Path,
                                                         orch: Callable[..., tuple[int, str, str]]) -> None:
    [job_id] = submit(orch, small_config("timeout", evals=50, epochs=30, resources={"time": "1"}))
    seen, rows = follow(job_id, timeout_s=240)
    assert seen[-1] == "TIMEOUT", seen
    paths = JobPaths(workdir / "registry", job_id)
    run = json.loads(paths.run.read_text())
    assert run["status"] == "interrupted"
    assert "received SIGUSR1" in paths.log.read_text()
    assert all(r["status"] == "ok" for r in read_json_lines(paths.trials))


def test_scancel_ends_cancelled(small_config: Callable[..., Path], orch: Callable[..., tuple[int, str, str]]) -> None:
    [job_id] = submit(orch, small_config("cancel", evals=50, epochs=30))
    deadline = time.monotonic() + 60
    while not any(r.state == "RUNNING" for r in rows_of(job_id)) and time.monotonic() < deadline:
        time.sleep(0.5)
    subprocess.run(["scancel", job_id], check=True, timeout=30)
    seen, rows = follow(job_id)
    job = next(r for r in rows if r.step is None)
    assert (job.state, job.state_detail) == ("CANCELLED", "by 0")
