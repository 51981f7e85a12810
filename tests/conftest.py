"""Shared fixtures: a scratch git repository with configs, synthetic NPZ data, a registry."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

from orchestrator.cli import main
from orchestrator.core import jobenv
from orchestrator.launch.synthetic import generate
from orchestrator.scheduler.local_executor import executor_folder
from tests.helpers import v4_config


@pytest.fixture
def executor_task() -> Iterator[Callable[[str], dict[str, Any]]]:
    """Start a stand-in of the local executor's task for the submission ``base``: a sleeping process whose
    command line is a submitit task's of that submission's folder, as the real one's (``is_runner`` looks for
    it); return what its ``local_state.json`` names it by (pid and start time)."""
    started: list[subprocess.Popen[bytes]] = []

    def start(base: str) -> dict[str, Any]:
        started.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "-m",
                                         "submitit.core._submit", str(executor_folder(base))]))
        return {"runner_pid": started[-1].pid, "runner_started": jobenv.process_start(started[-1].pid)}

    yield start
    for process in started:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic data for plane X: es/ and cc/, 3 files each, ~60 samples per file."""
    root = tmp_path_factory.mktemp("data")
    generate(root, files_per_production=3, samples_per_file=60, planes=("X",), seed=1)
    return root


@pytest.fixture
def workdir(tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch repository (has .git) with ORCH_DATA_ROOT pointing at the synthetic data."""
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    monkeypatch.setenv("ORCH_DATA_ROOT", str(data_root))
    monkeypatch.delenv("ORCH_REGISTRY", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


@pytest.fixture
def write_config(workdir: Path) -> Callable[..., Path]:
    """Write a config (default: shipped v4) into the scratch repo; return its path."""

    def write(data: dict[str, Any] | None = None, name: str = "cfg_v4.json", text: str | None = None) -> Path:
        path = workdir / "repo" / "json" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text if text is not None else json.dumps(data if data is not None else v4_config()))
        return path

    return write


@pytest.fixture
def orch(capsys: pytest.CaptureFixture[str], workdir: Path) -> Callable[..., tuple[int, str, str]]:
    """Run the CLI in-process against the scratch registry; return (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["--registry", str(workdir / "registry"), *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run
