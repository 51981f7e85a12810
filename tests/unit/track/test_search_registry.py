"""A search's registry files on real files: claims when the filesystem misbehaves, which record counts,
growing JSON-lines files, and what orch sync makes of a search of several (local) workers."""

from __future__ import annotations

import errno
import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

from orchestrator.core import claims
from orchestrator.core.attempts import counting, mark_child
from orchestrator.core.errors import OrchError
from orchestrator.core.files import append_json_line, write_json_atomic
from orchestrator.core.records import LineTails
from orchestrator.core.registry import JobPaths, create_entry
from orchestrator.track.sync import Tick

SEARCH = "local-20261201T000000-cccccc"


def test_a_link_whose_reply_was_lost_is_still_our_claim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_link = os.link

    def link_then_lose_the_reply(src: str, dst: str) -> None:
        real_link(src, dst)
        raise FileExistsError(errno.EEXIST, "File exists")  # what a retried NFS link answers

    monkeypatch.setattr(os, "link", link_then_lose_the_reply)
    claim = claims.create(tmp_path, "0000", 0, {"job_id": "1"})
    assert claim is not None and claim.owner() == {"job_id": "1"}
    monkeypatch.undo()
    assert claims.create(tmp_path, "0000", 0, {"job_id": "2"}) is None


def test_a_filesystem_without_hard_links_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(src: str, dst: str) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    with pytest.raises(OrchError, match="must be on a filesystem with hard links"):
        claims.create(tmp_path, "0000", 0, {"job_id": "1"})
    assert os.listdir(tmp_path) == []  # no temporary file left


def test_the_rerun_of_a_trial_lost_to_memory_counts_also_in_records_older_than_claims() -> None:
    lost = {"trial": 0, "job_id": "1", "status": "failed", "failure": "resource"}
    rerun = {"trial": 0, "job_id": "2", "status": "ok", "loss": 0.3}
    assert counting([lost, rerun]) == [rerun]
    assert counting([{**rerun, "claim_generation": 0}, {**lost, "claim_generation": 1}])[0]["job_id"] == "1"
    first, second = {"trial": 1, "job_id": "1", "status": "ok", "loss": 0.5}, {"trial": 1, "job_id": "1",
                                                                              "status": "ok", "loss": 0.1}
    assert counting([first, second]) == [first]  # written twice: the first one


def test_line_tails_read_only_what_was_appended_and_notice_a_replaced_file(tmp_path: Path) -> None:
    path = tmp_path / "progress.jsonl"
    tails = LineTails()
    assert tails.read(path) == []
    append_json_line(path, {"epoch": 1})
    with open(path, "a") as handle:
        handle.write('{"epoch": 2')  # a line being written
    assert tails.read(path) == [{"epoch": 1}]
    with open(path, "a") as handle:
        handle.write("}\n")
    assert tails.read(path) == [{"epoch": 1}, {"epoch": 2}]
    path.unlink()
    append_json_line(path, {"epoch": 1, "again": True})  # the trial run again in the same directory
    assert tails.read(path) == [{"epoch": 1, "again": True}]


def local_job(root: Path, job_id: str, submission: dict, state: dict, runner: dict[str, Any]) -> JobPaths:
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    create_entry(root, job_id, {"submission.json": json.dumps(
        {"scheduler": "local", "submitted_at": now, "request": {"mem_gb": 2}, "config": {"label": "s_v1"},
         **submission})})
    paths = JobPaths(root, job_id)
    write_json_atomic(paths.local_state, {**runner, "host": socket.gethostname(), **state})
    return paths


def test_sync_derives_a_search_from_its_workers_and_reopens_it_for_a_late_attempt(
        tmp_path: Path, executor_task: Callable[[str], dict[str, Any]]) -> None:
    root = tmp_path / "registry"
    workers = [f"{SEARCH}_{n}" for n in (0, 1)]
    late = "local-20261201T000002-dddddd"  # someone resubmits worker 1 after all
    runner = executor_task(SEARCH)
    ended = {"started_at": "2026-12-01T00:00:00+00:00", "ended_at": "2026-12-01T00:01:00+00:00", "exit_code": 0}
    local_job(root, SEARCH, {"worker_ids": workers}, {"exit_code": 0}, runner)
    running = local_job(root, workers[0], {"search_id": SEARCH, "worker": 0}, {"started_at": ended["started_at"]},
                        runner)
    done = local_job(root, workers[1], {"search_id": SEARCH, "worker": 1}, ended, runner)
    Tick(root, 60).run()
    search = json.loads(JobPaths(root, SEARCH).scheduler.read_text())
    assert (search["state"], search["workers"]) == ("RUNNING", {"running": 1, "total": 2})

    write_json_atomic(running.local_state, {**json.loads(running.local_state.read_text()), **ended})
    write_json_atomic(done.result, {"test": {}})
    Tick(root, 60).run()
    search = json.loads(JobPaths(root, SEARCH).scheduler.read_text())
    assert search["state"] == "COMPLETED" and "recovery" in search
    index = json.loads((root / "index" / "index.json").read_text())["jobs"]
    assert index[SEARCH]["settled"] and index[SEARCH]["workers"] == {"running": 0, "total": 2}

    local_job(root, late, {"search_id": SEARCH, "worker": 1, "parent_job_id": workers[1]},
              {"started_at": ended["started_at"]}, runner)
    mark_child(done, late)
    Tick(root, 60).run()
    index = json.loads((root / "index" / "index.json").read_text())["jobs"]
    assert (index[SEARCH]["state"], index[SEARCH]["settled"]) == ("RUNNING", False)


def test_status_shows_the_running_trials_epoch_and_objective(tmp_path: Path,
                                                             executor_task: Callable[[str], dict[str, Any]]) -> None:
    from orchestrator.track.status import format_job, job_view

    root = tmp_path / "registry"
    job_id = "local-20261201T000003-eeeeee"
    job = local_job(root, job_id, {"estimate": {"peak_gb": 1.0}, "plane": "X"},
                    {"started_at": "2026-12-01T00:00:00+00:00"}, executor_task(job_id))
    for n in (0, 1):
        append_json_line(job.trials, {"trial": n, "job_id": job.job_id, "status": "pruned" if n else "ok",
                                      "loss": 0.3 + n, "objective": 0.3 + n, "objective_name": "val_loss",
                                      "params": {}, "duration_s": 5.0, "peak_rss_mb": 500.0, "epochs_run": 2})
    claims.create(job.claims, "0002", 0, {"job_id": job.job_id, "host": "h", "pid": 1})
    job.trial_dir(2).mkdir(parents=True)
    for epoch, value in ((1, 0.5), (2, 0.4)):
        append_json_line(job.progress(2), {"trial": 2, "epoch": epoch, "metric": "val_loss", "value": value,
                                           "best_loss": value})
    (job.dir / "config.json").write_text(json.dumps({"model_parameters": {"hp_max_evals": 5}}))
    lines = format_job(job_view(root, job.job_id))
    assert "running  trial 3: epoch 2, val_loss 0.4000" in lines
    assert any(line.startswith("trials   ") and "2/5 · 1 pruned" in line for line in lines)
    assert any("last     trial 2: val_loss 1.3000, pruned after 2 epochs" in line for line in lines)
