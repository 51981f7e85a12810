"""Appends that the kernel cuts short, torn lines, symlinks and modes; readers that skip what they cannot read."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.core import files
from orchestrator.core.attempts import search_records
from orchestrator.core.errors import OrchError
from orchestrator.core.files import append_json_line
from orchestrator.core.records import LineTails, read_json, read_json_lines, read_record
from orchestrator.core.registry import JobPaths, create_entry
from tests.helpers import REPO


def trial(n: int, job_id: str = "700") -> dict:
    return {"trial": n, "job_id": job_id, "status": "ok", "loss": 0.5 - n / 100}


def test_a_short_write_is_detected_and_the_next_append_is_whole(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "trials.jsonl"
    append_json_line(path, trial(0))
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, data[:9]))  # the kernel stops after 9 bytes
    with pytest.raises(OrchError, match=f"{path}: only 9 of [0-9]+ bytes of a line were written"):
        append_json_line(path, trial(1))
    monkeypatch.undo()
    append_json_line(path, trial(2))
    assert [r["trial"] for r in read_json_lines(path)] == [0, 2]
    assert (tmp_path / "trials.jsonl.torn").read_bytes() == b'{"job_id"\n'  # the torn part, kept aside
    assert path.read_bytes().endswith(b'\n{"job_id"\n' + (json.dumps(trial(2), sort_keys=True) + "\n").encode())


def test_a_line_torn_by_a_crash_never_glues_onto_the_next_so_the_job_can_resume(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = create_entry(tmp_path, "700", {"submission.json": "{}"})
    append_json_line(paths.trials, trial(0))
    with open(paths.trials, "a") as handle:
        handle.write('{"trial": 1, "objec')  # a worker killed mid-line
    append_json_line(paths.trials, trial(2))  # the attempt that resumes
    append_json_line(paths.trials, trial(3))
    assert [r["trial"] for r in search_records(paths)] == [0, 2, 3]
    assert f"orch: skipped {paths.trials} line 2: not valid JSON" in capsys.readouterr().err


def test_a_real_file_size_limit_cuts_an_append_short(tmp_path: Path) -> None:
    path = tmp_path / "trials.jsonl"
    append_json_line(path, trial(0))
    limit = path.stat().st_size + 20
    child = subprocess.run([sys.executable, "-c", f"""
import resource, signal, sys
from pathlib import Path
from orchestrator.core.errors import OrchError
from orchestrator.core.files import append_json_line
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
try:
    append_json_line(Path({str(path)!r}), {trial(1)!r})
except OrchError as exc:
    sys.exit(str(exc))
"""], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert child.returncode == 1 and f"{path}: only 20 of" in child.stderr
    assert path.stat().st_size == limit
    append_json_line(path, trial(2))
    assert [r["trial"] for r in read_json_lines(path)] == [0, 2]
    assert len((tmp_path / "trials.jsonl.torn").read_bytes()) == 21


def test_a_whole_record_missing_only_its_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "trials.jsonl"
    path.write_text(json.dumps(trial(0)))  # cut exactly before the newline
    append_json_line(path, trial(1))
    assert [r["trial"] for r in read_json_lines(path)] == [0, 1]
    assert not (tmp_path / "trials.jsonl.torn").exists()


def test_appends_never_follow_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "someone_elses.jsonl"
    target.write_text("")
    link = tmp_path / "trials.jsonl"
    link.symlink_to(target)
    with pytest.raises(OrchError, match=f"{link}: is a symbolic link"):
        append_json_line(link, trial(0))
    assert target.read_text() == ""
    (tmp_path / "gone.jsonl").symlink_to(tmp_path / "missing")  # a dangling link is not created through either
    with pytest.raises(OrchError, match="is a symbolic link"):
        append_json_line(tmp_path / "gone.jsonl", trial(0))
    assert not (tmp_path / "missing").exists()


def test_appended_files_are_group_writable_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        append_json_line(tmp_path / "trials.jsonl", trial(0))
        files._keep_torn(tmp_path / "progress.jsonl", b"{")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "trials.jsonl").stat().st_mode) == 0o664
    assert stat.S_IMODE((tmp_path / "progress.jsonl.torn").stat().st_mode) == 0o664


def test_lines_that_are_not_objects_are_skipped_and_reported_once(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "trials.jsonl"
    path.write_bytes(b'{"trial": 0}\n[]\n\xff\xfe\n\n{"trial": 1}\n')
    assert [r["trial"] for r in read_json_lines(path)] == [0, 1]
    assert [r["trial"] for r in read_json_lines(path)] == [0, 1]
    err = capsys.readouterr().err.splitlines()
    assert err == [f"orch: skipped {path} line 2: expected a JSON object, found an array",
                   f"orch: skipped {path} line 3: not valid JSON (a line torn by a crash or a full disk?)"]


def test_line_tails_skip_a_bad_line_and_keep_counting_lines(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "trials.jsonl"
    path.write_bytes(b'{"trial": 0}\n{"tri')
    tails = LineTails()
    assert tails.read(path) == [{"trial": 0}]
    with open(path, "ab") as handle:
        handle.write(b'\n"x"\n{"trial": 1}\n')
    assert tails.read(path) == [{"trial": 0}, {"trial": 1}]
    err = capsys.readouterr().err
    assert f"{path} line 2: not valid JSON" in err and f"{path} line 3: expected a JSON object, found a string" in err


def test_a_record_file_that_is_not_an_object_or_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    path.write_text("[1, 2]")
    assert read_json(path) == [1, 2]
    with pytest.raises(OrchError, match=f"{path}: expected a JSON object, found an array"):
        read_record(path)
    path.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(OrchError, match=f"{path}: not valid JSON"):
        read_json(path)


def test_trial_records_without_their_keys_are_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = create_entry(tmp_path, "701", {"submission.json": "{}"})
    for record in [trial(0, "701"), {"trial": "1"}, {"trial": 2, "job_id": "701", "status": "ok"}, trial(3, "701")]:
        append_json_line(paths.trials, record)
    assert [r["trial"] for r in search_records(JobPaths(tmp_path, "701"))] == [0, 3]
    err = capsys.readouterr().err
    assert f"{paths.trials} line 2: not a trial record" in err and f"{paths.trials} line 3: not a trial record" in err
