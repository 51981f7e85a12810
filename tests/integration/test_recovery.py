"""orch sync, status, cancel and resubmit end to end on the real SLURM (scripts/local-slurm)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from orchestrator.core import attempts
from orchestrator.core.records import read_json_lines
from orchestrator.core.registry import JobPaths
from tests.helpers import REPO, Orch, submitted, sync_until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("slurm")]
def test_out_of_memory_is_retried_with_more_memory_and_the_search_completes(
        small_config: Callable[..., Path], workdir: Path, orch: Orch) -> None:
    root = workdir / "registry"
    first = submitted(orch, "submit", str(small_config("oom", evals=3, resources={"mem_gb": 0.25},
                                                       recovery={"memory_factor": 4})))
    record = sync_until(orch, first, {"OUT_OF_MEMORY"}, root)
    child = record["recovery"]["child_job_id"]
    assert child and record["recovery"]["decision"] == "OUT_OF_MEMORY with 0.25 GB: retrying with 1 GB"
    second = json.loads(JobPaths(root, child).submission.read_text())
    assert (second["parent_job_id"], second["attempt"], second["request"]["mem_gb"]) == (first, 2, 1.0)
    assert sync_until(orch, child, {"COMPLETED"}, root)["recovery"]["decision"] == "completed"

    trials = list(read_json_lines(JobPaths(root, child).trials))
    assert sorted(r["trial"] for r in trials) == [0, 1, 2]  # hp_max_evals in total across both attempts
    assert json.loads(JobPaths(root, child).result.read_text())["trials_total"] == 3
    code, out, _ = orch("status", first)
    assert code == 0
    assert f"this search continues in {child}: orch status {child}" in out
    assert f"attempts {first} → {child}" in out and "OUT_OF_MEMORY" in out
    code, out, _ = orch("status", child, "--json")
    view = json.loads(out)
    assert view["attempts"] == [first, child] and view["trials"]["done"] == 3 and view["result"]["test"]


def test_scancel_then_resubmit_resumes_without_repeating_trials(small_config: Callable[..., Path], workdir: Path,
                                                                orch: Orch) -> None:
    root = workdir / "registry"
    first = submitted(orch, "submit", str(small_config("resume", evals=6, epochs=3)))
    paths = JobPaths(root, first)
    deadline = time.monotonic() + 180
    while len(list(read_json_lines(paths.trials))) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    code, out, err = orch("cancel", first)
    assert code == 0 and "cancel sent to SLURM" in out, err
    record = sync_until(orch, first, {"CANCELLED"}, root)
    assert record["recovery"] == {**record["recovery"], "decision": "cancelled: not retried", "child_job_id": None}
    done = list(read_json_lines(paths.trials))

    racers = [subprocess.Popen([sys.executable, "-m", "orchestrator", "--registry", str(root), "resubmit", first],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = sorted((r.wait(timeout=120), *r.communicate()) for r in racers)  # two members at once
    assert [code for code, _, _ in outcomes] == [0, 2], outcomes
    lost = outcomes[1][2]
    assert "its next attempt is being made by" in lost or "is already continued by" in lost, lost
    child = outcomes[0][1].strip().split()[-1]
    assert attempts.children(paths) == [child]  # one new attempt, not two
    sync_until(orch, child, {"COMPLETED"}, root)
    redone = list(read_json_lines(JobPaths(root, child).trials))
    assert sorted(r["trial"] for r in done + redone) == list(range(6))  # nothing repeated, nothing missing
    assert {r["trial"] for r in redone}.isdisjoint(r["trial"] for r in done if r["status"] == "ok")


def test_resubmit_refuses_a_job_that_has_not_ended(small_config: Callable[..., Path], workdir: Path, orch: Orch) -> None:
    job = submitted(orch, "submit", str(small_config("running", evals=50, epochs=30)))
    try:
        code, _, err = orch("resubmit", job)
        assert code == 2 and f"a new attempt needs it ended: orch cancel {job}, then orch sync" in err
    finally:
        subprocess.run(["scancel", job], check=True, timeout=30)


def test_without_slurmdbd_sync_reports_the_problem_and_marks_nothing_failed(
        small_config: Callable[..., Path], workdir: Path, orch: Orch) -> None:
    root = workdir / "registry"
    job = submitted(orch, "submit", str(small_config("nodbd", evals=1)))
    sync_until(orch, job, {"PENDING", "RUNNING", "COMPLETED"}, root)
    os.kill(int(Path("/run/slurm/slurmdbd.pid").read_text()), signal.SIGTERM)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the job ends while accounting is down
            shown = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True, timeout=30)
            if "JobState=COMPLETED" in shown.stdout:
                break
            time.sleep(1)
        code, out, err = orch("sync")
        assert code == 0
        assert "orch sync: problem: sacct failed" in err and "no job is marked failed for want of data" in err
        record = json.loads(JobPaths(root, job).scheduler.read_text())
        assert (record["state"], record["source"]) == ("COMPLETED", "scontrol")
    finally:
        subprocess.run([str(REPO / "scripts" / "local-slurm"), "start"], check=True, timeout=120,
                       capture_output=True)
