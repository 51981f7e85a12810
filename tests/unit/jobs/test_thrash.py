"""Thrashing against the memory limit: the limit hits as cgroup v1 and v2 count them, the rule that tells a
thrashing trial from a slow one, and the job's own word turning a FAILED exit into OUT_OF_MEMORY (the
real thing on the test cluster: tests/integration/test_recovery.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from jobs import thrash
from orchestrator.core.files import write_json_atomic
from orchestrator.core.registry import JobPaths, create_entry
from orchestrator.core.state import JobState, Observation
from orchestrator.scheduler.observe import with_own_end
from orchestrator.track.recovery import Policy, decide


def cgroups(tmp_path: Path, membership: str, files: dict[str, str]) -> tuple[Path, Path]:
    (tmp_path / "proc").write_text(membership)
    for name, text in files.items():
        (tmp_path / "fs" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "fs" / name).write_text(text)
    return tmp_path / "proc", tmp_path / "fs"


def test_cgroup_v1_limit_hits_are_the_largest_failcnt_of_the_process_cgroup_and_those_above(tmp_path: Path) -> None:
    unlimited = "9223372036854771712\n"
    proc, root = cgroups(tmp_path, "5:devices:/\n4:memory:/slurm/uid_0/job_7/step_batch\n0::/\n",
                         {"memory/memory.failcnt": "999999\n", "memory/memory.limit_in_bytes": unlimited,
                          "memory/slurm/memory.failcnt": "777777\n",  # every job's, no limit: not read
                          "memory/slurm/memory.limit_in_bytes": unlimited,
                          "memory/slurm/uid_0/job_7/memory.failcnt": "264000\n",  # where the job's limit is
                          "memory/slurm/uid_0/job_7/memory.limit_in_bytes": "375809638\n",
                          "memory/slurm/uid_0/job_7/step_batch/memory.failcnt": "0\n",
                          "memory/slurm/uid_0/job_7/step_batch/memory.limit_in_bytes": unlimited})
    hits = thrash.limit_hits(proc, root)
    assert hits is not None and hits() == 264000
    (root / "memory/slurm/uid_0/job_7/memory.failcnt").write_text("300000\n")
    assert hits() == 300000


def test_cgroup_v2_limit_hits_are_the_max_events(tmp_path: Path) -> None:
    job = "system.slice/slurmstepd.scope/job_8"
    proc, root = cgroups(tmp_path, f"0::/{job}/step_batch/user/task_0\n",
                         {f"{job}/memory.events": "low 0\nhigh 0\nmax 5123\noom 0\noom_kill 0\n",
                          f"{job}/memory.max": "375809024\n",
                          f"{job}/step_batch/user/task_0/memory.events": "max 0\n",
                          f"{job}/step_batch/user/task_0/memory.max": "max\n",
                          "system.slice/memory.events": "max 99999\n",  # a neighbour's, counted up here
                          "system.slice/memory.max": "max\n"})
    hits = thrash.limit_hits(proc, root)
    assert hits is not None and hits() == 5123


def test_in_a_container_the_limit_at_the_mount_root_is_watched(tmp_path: Path) -> None:
    proc, root = cgroups(tmp_path, "0::/\n", {"memory.events": "max 42\n", "memory.max": "2147483648\n"})
    hits = thrash.limit_hits(proc, root)
    assert hits is not None and hits() == 42


@pytest.mark.parametrize("membership", ["4:memory:/\n0::/\n", "0::/\n", "", "4:memory:/a/b\n0::/a/b\n"])
def test_a_process_in_no_limited_cgroup_has_nothing_to_watch(tmp_path: Path, membership: str) -> None:
    proc, root = cgroups(tmp_path, membership, {"memory/memory.failcnt": "12\n", "memory.events": "max 3\n",
                                                "memory/a/b/memory.failcnt": "5\n", "a/b/memory.events": "max 5\n",
                                                "memory.max": "max\n", "a/b/memory.max": "max\n",
                                                "memory/a/b/memory.limit_in_bytes": "9223372036854771712\n"})
    assert thrash.limit_hits(proc, root) is None
    assert thrash.limit_hits(tmp_path / "no such file", root) is None


def watch(tmp_path: Path, counts: list[int]) -> tuple[thrash.Watch, Path, Path]:
    progress, pulse = tmp_path / "progress.jsonl", tmp_path / "pulse"
    progress.write_text('{"epoch": 1}\n')
    pulse.touch()
    os.utime(pulse, ns=(0, 0))
    it = iter(counts)
    return thrash.Watch(lambda: next(it), (progress, pulse), window_s=60, min_hits=10_000), progress, pulse


def test_a_trial_thrashes_after_a_whole_window_of_limit_hits_with_no_epoch(tmp_path: Path) -> None:
    w, _, _ = watch(tmp_path, [0, 50_000, 100_000, 150_000])
    assert w.check(0.0) is None
    assert w.check(30.0) is None  # many hits, but not yet a whole window
    reason = w.check(60.0)
    assert reason == ("thrashing at its memory limit: the limit was hit 100,000 times in 60 s with no training "
                      "batch finished")


def test_a_trial_that_finishes_epochs_or_hits_the_limit_rarely_does_not_thrash(tmp_path: Path) -> None:
    w, progress, pulse = watch(tmp_path, [0, 60_000, 120_000, 180_000, 240_000, 300_000, 360_000])
    assert w.check(0.0) is None and w.check(40.0) is None
    progress.write_text(progress.read_text() + '{"epoch": 2}\n')  # slow, but it learns
    assert w.check(70.0) is None
    assert w.check(100.0) is None  # the window since the epoch is not over yet
    os.utime(pulse, ns=(1, 1))  # a batch finished, in an epoch of many minutes
    assert w.check(140.0) is None and w.check(170.0) is None
    assert w.check(200.0) is not None  # then nothing for a whole window since the sample after that batch
    w, _, _ = watch(tmp_path, [0, 3_000, 6_000, 9_000])  # page cache reclaimed now and then: healthy
    assert [w.check(t) for t in (0.0, 60.0, 120.0, 180.0)] == [None] * 4


def test_a_job_that_ended_as_out_of_memory_itself_is_recovered_with_more_memory(tmp_path: Path) -> None:
    paths = create_entry(tmp_path, "900", {"submission.json": json.dumps({"scheduler": "slurm"})})
    failed = Observation(JobState.FAILED, "", "sacct", exit_code=1, max_rss_bytes=int(0.35 * 1024**3))
    assert with_own_end(paths, failed) is failed  # no run record: the scheduler's word stands
    write_json_atomic(paths.run, {"status": "failed", "reason": "a program error"})
    assert with_own_end(paths, failed) is failed
    write_json_atomic(paths.run, {"status": "out_of_memory", "reason": "thrashing at its memory limit: ..."})
    seen = with_own_end(paths, failed)
    assert (seen.state, seen.reason, seen.source, seen.max_rss_bytes) == (
        JobState.OUT_OF_MEMORY, "thrashing at its memory limit: ...", "sacct", failed.max_rss_bytes)
    decision = decide(seen.state, 1, 0.35, seen.max_rss_bytes, Policy(3, 2.0, None))
    assert decision.resubmit and decision.mem_gb == 1.0
    completed = Observation(JobState.COMPLETED, "", "sacct")
    assert with_own_end(JobPaths(tmp_path, "900"), completed) is completed
