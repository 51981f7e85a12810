"""A registry shared by a group, tried as a careless or hostile member would: two users of one group,
different umasks, links planted where orch writes, a rewritten script, racing commands.

The members are forks of the test process that drop root for their own uid (one gid): the interpreter
of the test may lie where those uids cannot read, so nothing is exec'd as them.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import socket
import stat
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jobs.search import write_request
from orchestrator.core import attempts, claims, sweep
from orchestrator.core.attempts import search_records
from orchestrator.core.config_file import load_config
from orchestrator.core.errors import InputError, OrchError
from orchestrator.core.files import (
    OWNER_FILE_MODE,
    append_json_line,
    make_dir,
    write_atomic,
    write_json_atomic,
)
from orchestrator.core.records import read_json
from orchestrator.core.registry import JobPaths, create_entry
from orchestrator.launch.plan import plan
from orchestrator.track.cancel import cancel
from orchestrator.track.sync import Lock
from tests.helpers import local_end, release_local, v4_config

GROUP, ALICE, BOB = 4100, 4101, 4102
JOB = "local-20261202T000000-aaaaaa"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="two users of one group need root to set them up")


def as_member(uid: int, umask: int, action: Callable[[], Any]) -> None:
    """Run ``action`` in a fork of this process as ``uid`` of the group, with ``umask``; raise its error."""
    errors = multiprocessing.get_context("fork").SimpleQueue()

    def member() -> None:
        os.setgroups([])
        os.setgid(GROUP)
        os.setuid(uid)
        os.umask(umask)
        try:
            action()
            errors.put(None)
        except BaseException as exc:  # handed to the test, which raises it
            errors.put((type(exc), str(exc), traceback.format_exc()))

    process = multiprocessing.get_context("fork").Process(target=member)
    process.start()
    process.join(timeout=60)
    if errors.empty():
        raise AssertionError(f"the member of uid {uid} exited with {process.exitcode} before it could report")
    outcome = errors.get()
    if outcome is not None:
        kind, message, text = outcome
        raise kind(f"{message}\n--- as uid {uid} ---\n{text}")


@pytest.fixture
def shared() -> Iterator[Path]:
    """A group's shared folder, where the registry of the tests will be created (the tests' tmp_path is
    not reachable by other uids)."""
    folder = Path(tempfile.mkdtemp(prefix="orch-group-", dir="/tmp"))
    os.chown(folder, 0, GROUP)
    os.chmod(folder, 0o2775)
    yield folder
    shutil.rmtree(folder)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@needs_root
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_what_one_member_creates_the_other_can_use_whatever_the_umask(shared: Path, umask: int) -> None:
    root = shared / "registry"
    paths = JobPaths(root, JOB)

    def alice() -> None:
        create_entry(root, JOB, {"submission.json": "{}\n"})
        make_dir(paths.trial_dir(0))
        write_json_atomic(paths.run, {"status": "running"})
        append_json_line(paths.trials, {"trial": 0, "job_id": JOB, "status": "ok", "loss": 0.5})
        attempts.mark_child(paths, "local-20261202T000001-bbbbbb")
        write_json_atomic(paths.scheduler, {"state": "RUNNING"})  # her sync
        Lock(root).release()

    def bob() -> None:
        lock = Lock(root)  # the lock file alice made
        assert lock.acquire()
        lock.release()
        write_json_atomic(paths.scheduler, {"state": "COMPLETED"})  # his sync replaces her sync's record
        make_dir(paths.trial_dir(1))
        write_json_atomic(paths.request(1), {"trial": 1})
        assert read_json(paths.run) == {"status": "running"}
        assert [r["loss"] for r in search_records(paths)] == [0.5]  # what orch status reads of the trials

    as_member(ALICE, umask, alice)
    as_member(BOB, umask, bob)
    assert {p.name: mode(p) for p in (root, root / "jobs", root / ".staging", root / "locks", root / "index",
                                      paths.dir, paths.trials_dir, paths.trial_dir(0), paths.children)} == {
        "registry": 0o3775, "jobs": 0o3775, ".staging": 0o3775, "locks": 0o3775, "index": 0o2775, JOB: 0o3775,
        "trials": 0o3775, "0000": 0o2775, "children": 0o2775}
    assert {mode(p) for p in (paths.submission, paths.run, paths.trials, root / "locks" / "sync.lock", paths.scheduler,
                              paths.children / "local-20261202T000001-bbbbbb")} == {0o664}


@needs_root
def test_no_member_can_move_another_members_job_directory_its_folders_the_registrys_or_the_sync_lock(
        shared: Path) -> None:
    root = shared / "registry"
    as_member(ALICE, 0o022, lambda: (create_entry(root, JOB, {"submission.json": "{}\n"}), Lock(root).release()))

    def bob() -> None:
        paths = JobPaths(root, JOB)
        for folder in (paths.dir, root / "jobs", root / "locks", root / "index", *paths.folders()):  # to swap for a link
            with pytest.raises(PermissionError):
                os.rename(folder, folder.with_name("elsewhere"))
        with pytest.raises(PermissionError):
            os.unlink(root / "locks" / "sync.lock")  # while a tick holds it
        assert not JobPaths(root, JOB).submission.is_symlink()

    as_member(BOB, 0o022, bob)


@needs_root
def test_a_members_sync_leaves_the_others_leftovers_in_a_sticky_job_directory_to_the_others_sync(shared: Path) -> None:
    root = shared / "registry"
    paths = JobPaths(root, JOB)
    leftovers = [paths.dir / ".run.0123abcd.tmp.json", paths.trial_dir(0) / ".history.0123abcd.tmp.json",
                 paths.dir / ".cache.77.abcdef"]

    def alice() -> None:
        create_entry(root, JOB, {"submission.json": "{}\n"})
        make_dir(paths.trial_dir(0))
        make_dir(leftovers[2])
        for path in leftovers[:2]:
            path.write_text("cut off")
        for path in leftovers:
            os.utime(path, (0, 0))

    def sweep_as(removed: int, left: list[Path]) -> Callable[[], None]:
        def tick() -> None:
            swept = sweep.Swept()
            sweep.sweep_tree(paths.dir, time.time() - sweep.AGE_S, swept)
            assert (swept.removed, swept.problems, sorted(swept.left)) == (removed, [], sorted(map(str, left)))
        return tick

    as_member(ALICE, 0o022, alice)
    sticky = [leftovers[0], leftovers[2]]  # in her sticky job directory; the trial's folder is not sticky
    as_member(BOB, 0o022, sweep_as(1, sticky))
    assert [path.exists() for path in leftovers] == [True, False, True]
    as_member(ALICE, 0o022, sweep_as(2, []))
    assert not any(path.exists() for path in leftovers)


def test_a_registry_root_made_by_the_group_keeps_its_mode(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    root.mkdir()
    os.chmod(root, 0o3770)  # private to the group
    create_entry(root, JOB, {"submission.json": "{}\n"})
    assert mode(root) == 0o3770 and mode(root / "jobs") == 0o3775


@needs_root
def test_a_planted_link_is_never_written_or_chmodded_through(shared: Path, write_config: Callable[..., Path]) -> None:
    root = shared / "registry"
    private = shared / "alice_private"
    paths = JobPaths(root, JOB)

    def alice() -> None:
        private.mkdir(mode=0o700)
        (private / "notes").write_text("mine")
        create_entry(root, JOB, {"submission.json": "{}\n"})

    def bob() -> None:
        os.symlink(private, paths.trial_dir(0))  # where alice's job will make its first trial's folder
        os.mkdir(paths.trial_dir(1))  # a real folder, which bob could swap for a link once alice writes in it
        os.symlink(private / "notes", paths.dir / "model.keras")
        os.symlink(private / "made_by_sync", root / "locks" / "sync.lock")
        os.symlink(private / "notes", paths.claims / "0.0")

    def alices_job() -> None:
        for trial in (0, 1):
            with pytest.raises(OrchError, match=f"{paths.trial_dir(trial).name}: (is a symbolic link|made by uid {BOB})"):
                write_request(config, paths, trial, {}, {})
        write_atomic(paths.dir / "model.keras", lambda tmp: tmp.write_text("model"))
        with pytest.raises(OrchError, match="sync.lock: is a symbolic link"):
            Lock(root)
        claims.beat(claims.Claim("0", 0, paths.claims))  # a heartbeat touches the link, not alice's notes

    config = load_config(write_config(v4_config()))
    as_member(ALICE, 0o077, alice)
    os.utime(private / "notes", (0, 0))
    as_member(BOB, 0o022, bob)
    as_member(ALICE, 0o077, alices_job)
    assert mode(private) & 0o077 == 0  # not made group-writable through the link
    assert (private / "notes").read_text() == "mine" and os.stat(private / "notes").st_mtime == 0
    assert os.listdir(private) == ["notes"]
    assert (paths.dir / "model.keras").read_text() == "model" and not (paths.dir / "model.keras").is_symlink()
    assert not (private / "made_by_sync").exists()


def test_the_local_executor_runs_the_script_made_at_submit_not_what_is_in_the_job_directory(
        write_config: Callable[..., Path], workdir: Path) -> None:
    root = workdir / "registry"
    submitted = plan(write_config(v4_config()), root)
    frozen = submitted.config.frozen("X")
    paths = create_entry(root, JOB, {"job.sbatch": submitted.script, "submission.json": json.dumps(
        {"scheduler": "local", "submitted_at": "2026-12-02T00:00:00+00:00", "request": {"mem_gb": 2}}),
                                     "config.json": json.dumps(frozen)})
    pwned = workdir / "pwned"
    # before the job starts, a member rewrites its script and its config, and plants a package named like ours
    paths.script.write_text(f"#!/bin/bash\ntouch {pwned}.script\n")
    write_json_atomic(paths.config, {**frozen, "output_folder": str(pwned)})
    (paths.dir / "jobs").mkdir()
    (paths.dir / "jobs" / "__init__.py").write_text("")
    (paths.dir / "jobs" / "mt_identifier.py").write_text(f"open({str(pwned)!r} + '.module', 'w')\n")
    release_local(root, [JOB], submitted.script)
    assert local_end(paths, 120)["exit_code"] == 2
    assert list(workdir.glob("pwned*")) == []
    assert f"orch job: error: {paths.config}: is not the config this job was submitted with" in paths.log.read_text()


def _reserve(paths: JobPaths, n: int, wins: Any) -> None:
    try:
        attempts.reserve_next(paths, {"user": f"member{n}", "host": "h", "pid": os.getpid(), "reserved_at": "now"})
        wins.put(n)
    except InputError as exc:
        assert "its next attempt is being made by member" in str(exc), exc
        wins.put(None)


def test_of_commands_racing_to_continue_a_job_exactly_one_makes_the_attempt(tmp_path: Path) -> None:
    paths = create_entry(tmp_path / "registry", JOB, {"submission.json": "{}\n"})
    context = multiprocessing.get_context("fork")
    wins = context.SimpleQueue()
    racers = [context.Process(target=_reserve, args=(paths, n, wins)) for n in range(8)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=60)
    assert [r.exitcode for r in racers] == [0] * 8
    outcomes = [wins.get() for _ in racers]
    assert len([n for n in outcomes if n is not None]) == 1
    winner = next(n for n in outcomes if n is not None)
    assert json.loads(paths.next_attempt.read_text())["user"] == f"member{winner}"
    attempts.mark_child(paths, "local-20261202T000001-bbbbbb")
    attempts.release_next(paths)  # even without its reservation, a job continued once is not continued again
    with pytest.raises(InputError, match="already continued by local-20261202T000001-bbbbbb; .*"
                                         "orch resubmit local-20261202T000001-bbbbbb"):
        attempts.reserve_next(paths, {"user": "late"})


@needs_root
def test_no_member_can_rewrite_or_replace_anothers_local_record_nor_cancel_anothers_local_job(shared: Path) -> None:
    root = shared / "registry"
    paths = JobPaths(root, JOB)
    record = {"host": socket.gethostname(), "runner_pid": os.getpid(), "runner_started": 1,
              "started_at": "2026-12-02T00:00:00+00:00"}

    def alice() -> None:  # her local executor's record of her running job
        create_entry(root, JOB, {"submission.json": json.dumps(
            {"scheduler": "local", "submitted_at": record["started_at"], "request": {"mem_gb": 2}})})
        write_json_atomic(paths.local_state, record, OWNER_FILE_MODE)

    def bob() -> None:
        with pytest.raises(PermissionError):
            paths.local_state.write_text('{"exit_code": 0}')  # to have sync settle it, or cancel point elsewhere
        with pytest.raises(PermissionError):
            write_json_atomic(paths.local_state, {**record, "exit_code": 75})  # replace it: the folder is sticky
        with pytest.raises(InputError, match=f"its local executor runs as uid {ALICE}; only that user can cancel it"):
            cancel(root, JOB)

    as_member(ALICE, 0o002, alice)
    as_member(BOB, 0o002, bob)
    assert json.loads(paths.local_state.read_text()) == record
