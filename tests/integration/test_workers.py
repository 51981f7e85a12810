"""Searches with several workers for real: Keras trials on tiny data, claims in the registry, the local
executor and the real SLURM (scripts/local-slurm) with its arrays, scancel and sync."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import pytest

from orchestrator.core import claims
from orchestrator.core.attempts import members, search_records
from orchestrator.core.records import read_json_lines
from orchestrator.core.registry import JobPaths
from orchestrator.launch.plan import plan
from orchestrator.launch.submit import submit
from orchestrator.scheduler.local_backend import Local
from tests.helpers import Orch, local_end, submitted, sync_until

pytestmark = pytest.mark.slow


def worker_records(root: Path, search: str) -> dict[str, list[dict[str, Any]]]:
    """Every record each member of the search wrote, by job ID."""
    return {m.job_id: list(read_json_lines(m.trials)) for m in members(JobPaths(root, search))}


def results(root: Path) -> list[Path]:
    return sorted((root / "jobs").glob("*/result.json"))


def wait_for(what: Callable[[], Any], timeout_s: float, message: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(message)


def running_claim(root: Path, search: str, job_id: str | None = None) -> claims.Claim | None:
    """A trial claim (of ``job_id``, or of anyone) whose trial is still running: claimed, not recorded."""
    recorded = {r["trial"] for r in search_records(JobPaths(root, search))}
    return next((c for c in claims.current(JobPaths(root, search).claims).values()
                 if c.trial is not None and c.trial not in recorded and c.owner().get("pid")
                 and job_id in (None, c.owner().get("job_id"))), None)


def test_three_local_workers_one_killed_mid_trial_still_run_nine_trials_once(
        small_config: Callable[..., Path], workdir: Path, orch: Orch) -> None:
    root = workdir / "registry"
    config = small_config("workers", evals=9, epochs=3, resources={"workers": 3, "heartbeat_limit_s": 4},
                          model={"algorithm": "optuna_tpe", "startup_trials": 3})  # parallel Optuna, liar and all
    [search] = submit(plan(config, root), Local())
    assert [m.job_id for m in members(JobPaths(root, search))] == [f"{search}_{n}" for n in range(3)]
    wait_for(lambda: len(search_records(JobPaths(root, search))) >= 2, 300, "no trial finished")
    victim = wait_for(lambda: running_claim(root, search), 120, "no trial running")
    os.kill(victim.owner()["pid"], signal.SIGKILL)  # the worker's job process; its trial dies with it
    killed_at = time.time()
    for member in members(JobPaths(root, search)):
        local_end(member, timeout_s=600)

    every = [r for records in worker_records(root, search).values() for r in records]
    assert sorted(r["trial"] for r in every) == list(range(9))  # none twice, none lost
    retaken = next(r for r in every if r["trial"] == victim.trial)
    assert retaken["job_id"] != victim.owner()["job_id"] and retaken["claim_generation"] == 1
    started = datetime.fromisoformat(retaken["started_at"]).timestamp()
    assert started >= killed_at + 4 - 1  # taken over after the heartbeat limit (timestamps in whole seconds)
    assert len(results(root)) == 1
    states = {m.job_id: json.loads(m.local_state.read_text())["exit_code"] for m in members(JobPaths(root, search))}
    assert sorted(states.values()) == [-signal.SIGKILL, 0, 0]

    code, out, err = orch("sync")
    assert code == 0, err
    code, out, _ = orch("status", search)
    assert "search of 3 workers" in out and "9/9" in out and "workers  0/3 running" in out
    code, out, _ = orch("status")
    [row] = [line for line in out.splitlines() if line.startswith(search)]
    assert row.split()[:5] == [search, "workers_v1", "X", "COMPLETED", "9"] and row.endswith("0/3 running")
    code, out, _ = orch("status", "--workers")
    assert sum(line.startswith(f"{search}_") for line in out.splitlines()) == 3
    code, out, err = orch("report", search)
    assert code == 0, err
    page = Path(out.splitlines()[1]).read_text()
    assert "/9)" in page  # "best result found ... (trial k/9)", over all workers
    assert "proposer Optuna TPE (multivariate), 3 of 9 trials random start-up" in page
    code, out, err = orch("compare", "workers")
    assert code == 0 and f"| {search} | 9/9 | Optuna TPE (multivariate), 3 of 9 trials random start-up |" in out, err


def test_cancelling_a_local_search_stops_every_worker(small_config: Callable[..., Path], workdir: Path,
                                                      orch: Orch) -> None:
    root = workdir / "registry"
    search = submitted(orch, "submit", "--local", str(small_config("stopall", evals=20, epochs=5,
                                                                   resources={"workers": 2})))
    for n in (0, 1):
        wait_for(lambda: running_claim(root, search, f"{search}_{n}"), 300, f"worker {n} never ran a trial")
    code, out, err = orch("cancel", search)
    assert code == 0 and out.count("stop sent to the local executor's task") == 2, err
    workers = [JobPaths(root, f"{search}_{n}") for n in (0, 1)]
    wait_for(lambda: all("exit_code" in json.loads(w.local_state.read_text()) for w in workers), 120,
             "the workers did not stop")
    assert all(json.loads(w.local_state.read_text())["cancelled"] for w in workers)
    orch("sync")
    assert json.loads(JobPaths(root, search).scheduler.read_text())["state"] == "CANCELLED"
    assert not results(root)


def test_two_slurm_workers_share_a_search_and_one_final(small_config: Callable[..., Path], workdir: Path,
                                                        orch: Orch, slurm: None) -> None:
    root = workdir / "registry"
    code, out, _ = orch("submit", "--dry-run", str(small_config("pair", evals=6, resources={"workers": 2})))
    assert code == 0 and "#SBATCH --array=0-1" in out and "2 workers" in out
    search = submitted(orch, "submit", str(small_config("pair", evals=6, resources={"workers": 2})))
    assert "_" not in search
    sync_until(orch, search, {"COMPLETED"}, root, timeout_s=600)
    by_worker = worker_records(root, search)
    every = [r for records in by_worker.values() for r in records]
    assert sorted(r["trial"] for r in every) == list(range(6))
    assert all(by_worker[f"{search}_{n}"] for n in (0, 1))  # both tasks ran trials
    assert len(results(root)) == 1
    code, out, _ = orch("status", search)
    assert "6/6" in out and "search of 2 workers" in out and "COMPLETED" in out
    code, out, _ = orch("status", f"{search}_1")
    assert f"worker 1 of search {search}" in out


def test_a_cancelled_slurm_worker_leaves_the_search_to_the_other(small_config: Callable[..., Path], workdir: Path,
                                                                  orch: Orch, slurm: None) -> None:
    root = workdir / "registry"
    search = submitted(orch, "submit", str(small_config("lose", evals=6, epochs=4, resources={"workers": 2})))
    victim = wait_for(lambda: running_claim(root, search, f"{search}_1"), 300, "worker 1 never ran a trial")
    time.sleep(2)  # inside the trial
    subprocess.run(["scancel", f"{search}_1"], check=True, timeout=30)
    sync_until(orch, search, {"COMPLETED"}, root, timeout_s=600)
    assert json.loads(JobPaths(root, f"{search}_1").scheduler.read_text())["state"] == "CANCELLED"
    every = [r for records in worker_records(root, search).values() for r in records]
    assert sorted(r["trial"] for r in every) == list(range(6))
    assert next(r for r in every if r["trial"] == victim.trial)["job_id"] == f"{search}_0"  # run again
    assert len(results(root)) == 1
