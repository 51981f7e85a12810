"""Helpers the tests share (fixtures stay in the conftest files): the repository, the shipped v4
config, and a job run through the local backend."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from orchestrator.core.records import read_optional_record
from orchestrator.core.registry import JobPaths
from orchestrator.scheduler.backend import Batch
from orchestrator.scheduler.local_backend import Local

REPO = Path(__file__).resolve().parent.parent
V4 = REPO / "json" / "mt_identifier" / "production_training_prod_main_v4.json"
Orch = Callable[..., tuple[int, str, str]]  # the ``orch`` fixture: the CLI in-process, (exit code, stdout, stderr)
TERMINAL = {"COMPLETED", "FAILED", "OUT_OF_MEMORY", "TIMEOUT", "CANCELLED", "PREEMPTED", "NODE_FAIL"}


def v4_config() -> dict[str, Any]:
    """The shipped v4 config as a dict, to mutate in tests."""
    return copy.deepcopy(json.loads(V4.read_text()))


def release_local(root: Path, job_ids: list[str], script: str, timeout_min: int = 30, signal_s: int = 60) -> None:
    """Start ``job_ids`` (the tasks of one submission, recorded already) on the local backend with
    ``script``, as ``orch submit`` would (again, as a requeue would: their executor records start anew)."""
    for job_id in job_ids:
        JobPaths(root, job_id).local_state.unlink(missing_ok=True)
    base = job_ids[0].split("_")[0]
    Local().release(Batch(root, script, (), timeout_min, signal_s, 0), base, job_ids)


def local_end(paths: JobPaths, timeout_s: float = 300) -> dict[str, Any]:
    """The local executor's record of the job of ``paths`` once it recorded its end."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = read_optional_record(paths.local_state) or {}
        if "exit_code" in state:
            return state
        time.sleep(0.2)
    raise AssertionError(f"{paths.job_id} did not end within {timeout_s} s")


def submitted(orch: Orch, *args: str) -> str:
    code, out, err = orch(*args)
    assert code == 0, err
    return out.split(": ")[1].split()[0]


def sync_until(orch: Orch, job_id: str, states: set[str], root: Path, timeout_s: float = 300) -> dict[str, Any]:
    """Run ticks (as cron would) until the job's registry state is one of ``states``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        code, _, err = orch("sync", "--quiet")
        assert code == 0, err
        path = JobPaths(root, job_id).scheduler
        if path.exists():
            record = json.loads(path.read_text())
            if record["state"] in states and (record["state"] not in TERMINAL or "recovery" in record):
                return record
        time.sleep(1)
    pytest.fail(f"{job_id} did not reach {states} within {timeout_s} s")


def poison(path: Path) -> int:
    """Put 3 non-finite pixels in 2 samples of the NPZ at ``path``; return its sample count."""
    with np.load(path) as npz:
        images, meta = npz["images"], npz["metadata"]
    images[1, 5, 2] = np.nan
    images[1, 6, 2] = np.inf
    images[len(images) - 1, 0, 0] = -np.inf
    np.savez_compressed(path, images=images, metadata=meta)
    return len(images)
