"""Registry primitives on real files."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from orchestrator.core.errors import InputError
from orchestrator.core.files import append_json_line, write_json_atomic
from orchestrator.core.records import read_json_lines
from orchestrator.core.registry import (
    JobPaths,
    create_entry,
    new_local_job_id,
    resolve_root,
    validate_job_id,
)


@pytest.mark.parametrize("job_id", ["17832069", "17832069_2", new_local_job_id(), new_local_job_id() + "_1"])
def test_valid_job_ids(job_id: str) -> None:
    assert validate_job_id(job_id) == job_id


@pytest.mark.parametrize("job_id", ["", "..", "../17832069", "1/2", "17832069_", "abc", "local-x", "1 2", "1;rm"])
def test_invalid_job_ids(job_id: str) -> None:
    with pytest.raises(InputError, match="not a job ID"):
        JobPaths(Path("/r"), job_id)


def test_root_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ORCH_REGISTRY", raising=False)
    assert resolve_root() == tmp_path / "registry"
    (tmp_path / "orch").mkdir()
    (tmp_path / "orch" / "config.yaml").write_text("registry: /shared/site\n")
    assert resolve_root() == Path("/shared/site")
    monkeypatch.setenv("ORCH_REGISTRY", "/shared/env")
    assert resolve_root() == Path("/shared/env")
    assert resolve_root("/shared/cli") == Path("/shared/cli")


def test_user_config_rejects_unknown_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("ORCH_REGISTRY", raising=False)
    (tmp_path / "orch").mkdir()
    (tmp_path / "orch" / "config.yaml").write_text("registy: /x\n")
    with pytest.raises(InputError, match=r"config.yaml: registy: unknown key \(known: registry, site_dir\); "
                                         r"did you mean registry\?$"):
        resolve_root()


def test_atomic_write_leaves_no_temp_files_and_is_group_writable(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_json_atomic(path, {"a": 1})
    write_json_atomic(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert os.listdir(tmp_path) == ["state.json"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o664


def test_appends_are_whole_lines_and_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "trials.jsonl"
    for i in range(3):
        append_json_line(path, {"trial": i})
    with open(path, "a") as handle:
        handle.write('{"trial": 3, "objec')  # a writer killed mid-line
    assert [r["trial"] for r in read_json_lines(path)] == [0, 1, 2]


def test_entries_appear_whole_and_never_overwrite(tmp_path: Path) -> None:
    paths = create_entry(tmp_path, "123", {"submission.json": "{}\n", "job.sbatch": "#!/bin/bash\n"})
    assert sorted(os.listdir(paths.dir)) == ["artifacts", "children", "claims", "job.sbatch", "submission.json", "sync",
                                             "trials"]
    assert stat.S_IMODE(paths.dir.stat().st_mode) == 0o3775  # setgid, sticky, group rwx
    assert stat.S_IMODE(paths.trials_dir.stat().st_mode) == 0o3775
    assert {stat.S_IMODE(f.stat().st_mode) for f in (paths.artifacts, paths.children, paths.claims,
                                                    paths.scheduler.parent)} == {0o2775}
    with pytest.raises(InputError, match="already exists"):
        create_entry(tmp_path, "123", {"submission.json": "{\"other\": 1}\n"})
    assert (paths.dir / "submission.json").read_text() == "{}\n"
    assert os.listdir(tmp_path / ".staging") == []


def test_an_entry_being_assembled_is_closed_to_the_group_until_its_folders_are_made(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.core import registry

    seen: list[int] = []
    real = registry.write_text_atomic

    def spy(path: Path, text: str) -> None:
        seen.append(stat.S_IMODE(os.lstat(path.parent).st_mode))
        real(path, text)

    monkeypatch.setattr(registry, "write_text_atomic", spy)
    paths = create_entry(tmp_path, "124", {"submission.json": "{}\n"})
    assert seen == [0o2755]  # no member could make a name in it (a folder of its own, to swap later)
    assert stat.S_IMODE(paths.dir.stat().st_mode) == 0o3775
