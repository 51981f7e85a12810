"""Claims and the worker's coordination on real files and real processes (the objective is a stand-in).

Real trials of a search with several workers run in tests/integration/test_workers.py.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from jobs.coordination import Coordinator, Heartbeat, holder_gone
from jobs.search import run_search
from orchestrator.core import claims, jobenv
from orchestrator.core.attempts import mark_child, search_records
from orchestrator.core.config_file import load_config
from orchestrator.core.files import append_json_line
from orchestrator.core.records import read_json_lines
from orchestrator.core.registry import JobPaths, create_entry
from tests.helpers import REPO, v4_config
from tests.unit.jobs.stub_worker import StubRunner

SEARCH = "local-20261201T000000-aaaaaa"


def worker_id(n: int) -> str:
    return f"{SEARCH}_{n}"


def make_search(root: Path, workers: int) -> JobPaths:
    """A search entry listing ``workers`` worker entries, as orch submit writes them."""
    ids = [worker_id(n) for n in range(workers)]
    create_entry(root, SEARCH, {"submission.json": json.dumps({"worker_ids": ids})})
    for n, job_id in enumerate(ids):
        create_entry(root, job_id, {"submission.json": json.dumps({"search_id": SEARCH, "worker": n})})
    return JobPaths(root, SEARCH)


def test_a_claim_is_created_once_and_the_highest_generation_is_current(tmp_path: Path) -> None:
    owner = {"job_id": "1", "host": "h", "pid": 1}
    first = claims.create(tmp_path, "0003", 0, owner)
    assert first is not None and first.owner() == owner
    assert claims.create(tmp_path, "0003", 0, {"job_id": "2"}) is None  # another worker cannot win it too
    assert claims.create(tmp_path, "0003", 1, {"job_id": "2"}) is not None  # a takeover is the next generation
    (tmp_path / ".0003.2.abcd.tmp").write_text("{}")  # a stray temporary file is not a claim
    current = claims.current(tmp_path)
    assert (current["0003"].generation, current["0003"].owner()["job_id"]) == (1, "2")
    assert current["0003"].trial == 3
    claims.release(current["0003"], {"job_id": "2"}, "now")
    assert claims.current(tmp_path)["0003"].owner()["released_at"] == "now"


def test_the_next_trial_is_free_released_own_or_dead_and_never_a_live_workers(tmp_path: Path) -> None:
    search = make_search(tmp_path / "registry", 2)
    me, other = (JobPaths(search.root, worker_id(n)) for n in (0, 1))
    alive = {"value": True}
    coordinator = Coordinator(me, total=5, heartbeat_limit_s=2, gone=lambda owner: not alive["value"])
    theirs = {"job_id": other.job_id, "host": "h", "pid": 1}
    claims.create(search.claims, "0000", 0, theirs)  # running elsewhere
    released = claims.create(search.claims, "0001", 0, theirs)
    claims.release(released, theirs, "then")
    claims.create(search.claims, "0002", 0, {"job_id": me.job_id, "pid": 1})  # my own, from before a requeue
    append_json_line(other.trials, {"trial": 3, "job_id": other.job_id, "status": "ok", "loss": 1.0})

    taken = [coordinator.take("now").claim for _ in range(3)]
    assert [(c.trial, c.generation) for c in taken] == [(1, 1), (2, 1), (4, 0)]
    assert coordinator.take("now") is None  # trial 0 runs on a live worker: nothing to take
    alive["value"] = False
    assert coordinator.take("now") is None  # gone, but its heartbeat is still fresh
    os.utime(search.claims / "0000.0", (time.time() - 5, time.time() - 5))
    stale = coordinator.take("now").claim
    assert (stale.trial, stale.generation) == (0, 1)


def test_a_taken_over_trial_keeps_the_point_its_dead_worker_had_proposed(tmp_path: Path) -> None:
    search = make_search(tmp_path / "registry", 2)
    dead = JobPaths(search.root, worker_id(1))
    claims.create(search.claims, "0000", 0, {"job_id": dead.job_id})
    request = {"trial": 0, "vals": {"n_filters": 1}, "params": {"n_filters": 64}, "point": {}, "seed": 42}
    dead.trial_dir(0).mkdir(parents=True)
    (dead.trial_dir(0) / "request.json").write_text(json.dumps(request))
    os.utime(search.claims / "0000.0", (0, 0))
    coordinator = Coordinator(JobPaths(search.root, worker_id(0)), 1, 2, gone=lambda owner: True)
    taken = coordinator.take("now")
    assert taken.claim.generation == 1 and taken.previous == request
    assert coordinator.pending(coordinator.snapshot()) == []  # its own claim is not pending for itself


def test_a_worker_that_lost_trials_to_its_memory_runs_them_again_in_its_next_attempt(tmp_path: Path) -> None:
    search = make_search(tmp_path / "registry", 2)
    first = JobPaths(search.root, worker_id(1))
    append_json_line(first.trials, {"trial": 0, "job_id": first.job_id, "status": "failed", "failure": "resource",
                                    "reason": "killed", "claim_generation": 0})
    retry = "local-20261201T000001-bbbbbb"
    create_entry(search.root, retry, {"submission.json": json.dumps(
        {"search_id": SEARCH, "worker": 1, "parent_job_id": first.job_id})})
    mark_child(first, retry)
    claims.create(search.claims, "0000", 0, {"job_id": first.job_id})
    other = Coordinator(JobPaths(search.root, worker_id(0)), 1, 2, gone=lambda owner: True)
    assert other.take("now") is None and other.finished(other.snapshot())  # recorded, for anyone else
    mine = Coordinator(JobPaths(search.root, retry), 1, 2, gone=lambda owner: True)
    assert not mine.finished(mine.snapshot())
    assert mine.take("now").claim.generation == 1
    append_json_line(JobPaths(search.root, retry).trials, {"trial": 0, "job_id": retry, "status": "ok", "loss": 0.5,
                                                           "claim_generation": 1})
    assert [(r["job_id"], r["status"]) for r in search_records(first)] == [(retry, "ok")]


def test_the_heartbeat_touches_the_claim_and_notices_a_takeover(tmp_path: Path) -> None:
    claim = claims.create(tmp_path, "0000", 0, {"job_id": "1"})
    os.utime(claim.path, (0, 0))
    lost: list[bool] = []
    with Heartbeat(claim, 0.05, lambda: lost.append(True)) as heartbeat:
        time.sleep(0.3)
        assert claim.heartbeat_age_s() < 1
        claims.create(tmp_path, "0000", 1, {"job_id": "2"})
        time.sleep(0.3)
    assert heartbeat.lost and lost == [True]


def test_a_holder_on_this_host_is_gone_when_its_process_is() -> None:
    job_id = worker_id(0)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        host, started = socket.gethostname(), jobenv.process_start(child.pid)
        assert started is not None
        assert not holder_gone({"job_id": job_id, "host": host, "pid": child.pid, "started": started})
        assert holder_gone({"job_id": job_id, "host": host, "pid": child.pid, "started": started + 1})  # a reused pid
        assert holder_gone({"job_id": job_id, "host": host, "pid": child.pid})  # an older orch's claim: heartbeat alone
        assert holder_gone({"job_id": "local-20261121T211605-580bc7", "host": "elsewhere", "pid": child.pid,
                            "started": started})  # no squeue here, or squeue knows no such job: heartbeat alone
        child.kill()
        child.wait()  # reaped: the pid names no process any more
        assert holder_gone({"job_id": job_id, "host": host, "pid": child.pid, "started": started})
    finally:
        child.kill()
        child.wait()


def test_a_zombie_holder_is_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    started = jobenv.process_start(child.pid)
    while Path(f"/proc/{child.pid}/stat").read_text().split(") ")[1][:1] != "Z":
        time.sleep(0.01)  # exited, not reaped yet
    try:
        assert holder_gone({"job_id": worker_id(0), "host": socket.gethostname(), "pid": child.pid, "started": started})
    finally:
        child.wait()


def start_worker(config_file: Path, root: Path, job_id: str, total: int, sleep_s: float) -> subprocess.Popen[bytes]:
    """One stand-in job process (``tests.unit.jobs.stub_worker``) of the search in ``root``."""
    return subprocess.Popen([sys.executable, "-m", "tests.unit.jobs.stub_worker", str(config_file), str(root), job_id,
                             str(total), str(sleep_s)], cwd=REPO)


@pytest.fixture
def parallel_config(write_config: Callable[..., Path]) -> Callable[..., Path]:
    def write(evals: int, algorithm: str = "tpe") -> Path:
        cfg = v4_config()
        cfg["model_parameters"].update(hp_max_evals=evals, algorithm=algorithm)
        if algorithm != "random":
            cfg["model_parameters"]["startup_trials"] = 4
        cfg["resources"] = {"heartbeat_limit_s": 2}
        return write_config(cfg)
    return write


@pytest.mark.parametrize("algorithm", ["tpe", "optuna_tpe", "random"])
def test_six_worker_processes_run_every_trial_exactly_once(parallel_config: Callable[..., Path], workdir: Path,
                                                           algorithm: str) -> None:
    root = workdir / "registry"
    search = make_search(root, 6)
    config = parallel_config(48, algorithm)
    procs = [start_worker(config, root, worker_id(n), 48, 0.05) for n in range(6)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 6
    every = [r for n in range(6) for r in read_json_lines(JobPaths(root, worker_id(n)).trials)]
    assert sorted(r["trial"] for r in every) == list(range(48))  # none twice, none lost
    assert sum(1 for n in range(6) if any(read_json_lines(JobPaths(root, worker_id(n)).trials))) >= 3
    points = [json.dumps(r["params"], sort_keys=True) for r in every]
    assert len(set(points)) == 48  # workers proposing at the same moment got different points
    assert len(search_records(search)) == 48


def test_a_worker_killed_mid_trial_loses_nothing_and_its_trial_is_taken_over(
        parallel_config: Callable[..., Path], workdir: Path) -> None:
    root = workdir / "registry"
    make_search(root, 2)
    config = parallel_config(8)
    victim = start_worker(config, root, worker_id(1), 8, 30.0)
    claims_dir = JobPaths(root, SEARCH).claims
    deadline = time.monotonic() + 30
    while not claims.current(claims_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    [held] = claims.current(claims_dir).values()
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    last_beat = held.path.stat().st_mtime
    survivor = start_worker(config, root, worker_id(0), 8, 0.05)
    assert survivor.wait(timeout=60) == 0
    records = list(read_json_lines(JobPaths(root, worker_id(0)).trials))
    assert sorted(r["trial"] for r in records) == list(range(8))
    retaken = next(r for r in records if r["trial"] == held.trial)
    assert retaken["claim_generation"] == 1
    assert retaken["started_s"] - last_beat >= 2  # not before the heartbeat limit


class PeekingRunner(StubRunner):
    """While its trial runs, looks at the search as the other worker's proposer would."""

    def __init__(self, paths: JobPaths, other: Coordinator) -> None:
        super().__init__(paths, 0.0)
        self.other = other
        self.seen: list[Any] = []

    def run(self, tid: int, vals: dict[str, Any], params: dict[str, Any]) -> dict[str, Any] | None:
        self.seen.append((tid, vals, self.other.pending(self.other.snapshot())))
        return super().run(tid, vals, params)


def test_a_running_trials_point_is_pending_for_the_other_workers(parallel_config: Callable[..., Path],
                                                                 workdir: Path) -> None:
    root = workdir / "registry"
    make_search(root, 2)
    config = load_config(parallel_config(3))
    mine, theirs = JobPaths(root, worker_id(0)), JobPaths(root, worker_id(1))
    runner = PeekingRunner(mine, Coordinator(theirs, 3, 2))
    run_search(config, mine, runner, Coordinator(mine, 3, 2), log=lambda _: None)
    assert len(runner.seen) == 3
    assert all(pending == [(tid, vals)] for tid, vals, pending in runner.seen)
