"""One bad file in the registry never takes a command down for everyone: readers skip and report it."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.core import index, slurm
from orchestrator.core.files import append_json_line, write_json_atomic
from orchestrator.core.registry import JobPaths, create_entry
from orchestrator.track.sync import Tick

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)


def entry(root: Path, job_id: str, **changes: object) -> JobPaths:
    submission = {"scheduler": "slurm", "submitted_at": T0.isoformat(), "request": {"mem_gb": 8},
                  "config": {"label": "x_v1", "name": "x"}, "attempt": 1, "estimate": {"peak_gb": 6}, **changes}
    return create_entry(root, job_id, {"submission.json": json.dumps(submission),
                                       "config.json": json.dumps({"model_parameters": {"hp_max_evals": 4}})})


def status(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--registry", str(root), "status", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def no_slurm(monkeypatch: pytest.MonkeyPatch) -> None:
    """sacct and squeue that know no job."""
    monkeypatch.setattr(slurm, "run_sacct", lambda bases, start: [])
    monkeypatch.setattr(slurm, "run_squeue", lambda: [])


def test_stray_entries_in_jobs_are_skipped_and_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    entry(tmp_path, "100")
    (tmp_path / "jobs" / "README").write_text("our jobs\n")
    (tmp_path / "jobs" / "100.bak").mkdir()
    (tmp_path / "jobs" / "100_x.bak").mkdir()
    code, out, err = status(tmp_path, capsys)
    assert code == 0 and [line.split()[0] for line in out.splitlines()] == ["JOB", "100"]
    assert f"orch: skipped {tmp_path}/jobs/README: not a job directory (its name is not a job ID)" in err
    assert f"orch: skipped {tmp_path}/jobs/100.bak: not a job directory" in err
    assert status(tmp_path, capsys, "100")[0] == 0  # also where array tasks are looked for


def test_one_unreadable_submission_is_a_row_marked_unreadable(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    entry(tmp_path, "100")
    bad = entry(tmp_path, "101")
    bad.submission.write_text("")
    entry(tmp_path, "102", submitted_at="yesterday")
    code, out, err = status(tmp_path, capsys, "--since", "7d", "--all")
    assert code == 0 and f"orch: skipped {bad.submission}: not valid JSON" in err  # once per process
    code, out, _ = status(tmp_path, capsys, "--json")
    rows = {r["job_id"]: r for r in json.loads(out)}
    assert code == 0 and rows["100"]["state"] == "UNSYNCED"
    assert rows["101"]["state"] == "UNREADABLE" and rows["101"]["reason"].startswith(f"{bad.submission}: not valid")
    assert rows["102"]["state"] == "UNREADABLE" and "submitted_at: expected an ISO time" in rows["102"]["reason"]


def test_a_result_that_is_a_list_and_a_trials_line_that_is_a_list_are_skipped(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = entry(tmp_path, "100")
    append_json_line(paths.trials, {"trial": 0, "job_id": "100", "status": "ok", "loss": 0.3, "objective": 0.3,
                                    "objective_name": "val_loss", "params": {}, "duration_s": 5, "peak_rss_mb": 9})
    with open(paths.trials, "a") as handle:
        handle.write("[]\n")
    write_json_atomic(paths.result, [1, 2])
    code, out, err = status(tmp_path, capsys, "100")
    assert code == 0 and "trials   [#####---------------] 1/4" in out
    assert f"orch: skipped {paths.result}: expected a JSON object, found an array" in err
    assert f"orch: skipped {paths.trials} line 2: expected a JSON object, found an array" in err


def test_a_stray_file_in_children_does_not_stop_the_tick(tmp_path: Path, no_slurm: None) -> None:
    entry(tmp_path, "100")
    odd = entry(tmp_path, "101")
    (odd.children / "notes.txt").write_text("")
    (odd.children / "105").write_text("")
    Tick(tmp_path, 60, clock=lambda: T0).run()
    rows = index.load(tmp_path)
    assert rows["100"]["state"] == "UNKNOWN" and rows["101"]["children"] == ["105"]


def test_a_submission_without_submitted_at_is_reported_and_the_tick_goes_on(tmp_path: Path, no_slurm: None) -> None:
    entry(tmp_path, "100")
    bad = entry(tmp_path, "101")
    submission = json.loads(bad.submission.read_text())
    del submission["submitted_at"]
    bad.submission.write_text(json.dumps(submission))
    entry(tmp_path, "102", request=[8])
    tick = Tick(tmp_path, 60, clock=lambda: T0)
    tick.run()
    assert set(index.load(tmp_path)) == {"100"}
    assert tick.report.problems == [f"skipped 101: {bad.submission}: submitted_at: expected an ISO time with a "
                                    "zone, such as 2026-11-21T12:00:00+00:00",
                                    f"skipped 102: {tmp_path}/jobs/102/submission.json: request: expected an "
                                    "object with mem_gb"]


def test_an_unreadable_scheduler_record_is_rewritten_by_the_next_tick(tmp_path: Path, no_slurm: None) -> None:
    paths = entry(tmp_path, "100")
    paths.scheduler.write_text("{")
    tick = Tick(tmp_path, 60, clock=lambda: T0)
    tick.run()
    assert json.loads(paths.scheduler.read_text())["state"] == "UNKNOWN"
    assert tick.report.problems == [f"{paths.scheduler}: not valid JSON (Expecting property name enclosed in "
                                    "double quotes: line 1 column 2 (char 1)); was it edited by hand or cut short?; "
                                    "the job is observed anew"]


def test_a_fifo_a_link_or_a_folder_in_place_of_a_record_is_skipped_without_hanging(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], no_slurm: None) -> None:
    good = entry(tmp_path, "100")
    os.mkfifo(good.trials)  # counted for its row, on every tick
    os.mkfifo(good.log)  # shown by orch status ID when the job failed
    write_json_atomic(good.scheduler, {"state": "FAILED", "reason": "", "source": "sacct"})
    fifo, linked, folder = entry(tmp_path, "101"), entry(tmp_path, "102"), entry(tmp_path, "103")
    fifo.submission.unlink()
    os.mkfifo(fifo.submission)  # a reader that opened it would wait for a writer forever
    linked.submission.unlink()
    linked.submission.symlink_to("/dev/zero")  # one that followed it would read without end
    folder.submission.unlink()
    folder.submission.mkdir()
    code, out, err = status(tmp_path, capsys, "--json")
    rows = {r["job_id"]: r for r in json.loads(out)}
    assert code == 0 and rows["100"]["state"] == "FAILED" and f"skipped {good.trials}: not a regular file" in err
    assert f"{fifo.submission}: not a regular file" in rows["101"]["reason"]
    assert f"{linked.submission}: is a symbolic link" in rows["102"]["reason"]
    assert f"{folder.submission}: not a regular file" in rows["103"]["reason"]
    code, out, _ = status(tmp_path, capsys, "100")
    assert code == 0 and f"{good.log}: not a regular file" in out
    report = Tick(tmp_path, 60, clock=lambda: T0).run()
    assert sorted(p.split(":")[0] for p in report.problems if p.startswith("skipped 10")) == [
        "skipped 101", "skipped 102", "skipped 103"]
    assert "100" in index.load(tmp_path)  # the tick went on and saved the index
