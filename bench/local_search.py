"""Shared by the benches that run real Keras searches: the demo config, changed, through the local
executor. Not a bench itself."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from orchestrator.core.registry import JobPaths
from orchestrator.launch.plan import plan
from orchestrator.launch.submit import submit
from orchestrator.scheduler.backend import wait
from orchestrator.scheduler.local_backend import Local

DEMO = Path(__file__).resolve().parent.parent / "json" / "demo" / "demo.json"


def demo_config(data: Path, **model: Any) -> dict[str, Any]:
    """The demo config reading ``data`` (``orch demo-data`` layout), ``model_parameters`` updated."""
    config = json.loads(DEMO.read_text())
    config["data_directories"] = [str(data / "es"), str(data / "cc")]
    config["model_parameters"].update(model)
    return config


def run_local(config: dict[str, Any], folder: Path, name: str) -> tuple[JobPaths, float]:
    """Submit ``config`` to the local executor under ``folder`` and wait; the search and its wall time."""
    path = folder / f"{name}.json"
    path.write_text(json.dumps(config))
    root = folder / f"registry-{name}"
    started = time.monotonic()
    [job_id] = submit(plan(path, root), Local())
    if wait(JobPaths(root, job_id)) != "COMPLETED":
        raise RuntimeError(f"search {job_id} failed; see {root / 'jobs' / job_id}")
    return JobPaths(root, job_id), time.monotonic() - started
