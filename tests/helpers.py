"""Helpers the tests share (fixtures stay in the conftest files): the repository and the shipped v4 config,
the CLI's probe and its helpers, a job run through the local backend, poisoned data, and a registry of
every kind of search."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from orchestrator.core import attempts, index
from orchestrator.core.files import (
    append_json_line,
    write_json_atomic,
    write_text_atomic,
)
from orchestrator.core.records import read_json
from orchestrator.core.registry import JobPaths, create_entry
from orchestrator.core.units import GIB
from orchestrator.present.report import report_paths
from orchestrator.scheduler.backend import Batch, shown_state, wait
from orchestrator.scheduler.local_backend import Local

REPO = Path(__file__).resolve().parent.parent
V4 = REPO / "json" / "mt_identifier" / "production_training_prod_main_v4.json"
Orch = Callable[..., tuple[int, str, str]]  # the ``orch`` fixture: the CLI in-process, (exit code, stdout, stderr)
# run as `python -c PROBE ARGS`: the CLI in a fresh interpreter; prints its exit code and the heavy modules it loaded
PROBE = """
import json, sys
from orchestrator.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
heavy = ("tensorflow", "keras", "hyperopt", "optuna", "matplotlib", "submitit")
print(json.dumps({"code": code, "loaded": sorted(m for m in heavy if m in sys.modules)}))
"""
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
    Local().release(Batch(root, script, (), timeout_min, signal_s, 0), base, [job_ids])


def local_end(paths: JobPaths, timeout_s: float = 300) -> dict[str, Any]:
    """The local executor's record of the job of ``paths`` once it recorded its end."""
    wait(paths, timeout_s)
    return read_json(paths.local_state)


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


# A registry of every kind of search, for the overview page's unit and browser tests (make_registry):
# A registry of every kind of search, from real files written the way submit, the job and sync write
# them (no training): for the overview page's unit and browser tests.
#
# - ``100`` ``alpha_v1``: completed, 3 trials, artifacts in an ``output_folder``, its report made;
# - ``200`` → ``201`` ``beta_v2``: killed for memory, continued by a second attempt with more memory;
# - ``300`` ``gamma_v1``: a search of two workers ``300_0`` and ``300_1``, completed;
# - ``400``: running, its config name a piece of HTML (names are user input);
# - ``500``: a submission that is not JSON (UNREADABLE).

HOSTILE = "<script>alert('x')</script>&\"q"  # a config name that must come out as text


def _job(root: Path, job_id: str, label: str, name: str, version: int, submitted: str, mem_gb: float,
         scheduler: dict[str, Any] | None, losses: tuple[float, ...] = (), total: int = 3, settled: bool = True,
         output_folder: str | None = None, first_trial: int = 0, **submission: Any) -> JobPaths:
    record = {"scheduler": "slurm", "submitted_at": submitted, "request": {"mem_gb": mem_gb}, "attempt": 1,
              "plane": "X", "config": {"label": label, "name": name, "version": version},
              "estimate": {"peak_gb": mem_gb * 0.75}, **submission}
    config = {"model_parameters": {"hp_max_evals": total}, "output_folder": output_folder}
    paths = create_entry(root, job_id, {"submission.json": json.dumps(record), "config.json": json.dumps(config)})
    if scheduler is not None:
        if settled:
            scheduler = {**scheduler, "recovery": {"decision": "done", "child_job_id": None,
                                                   "decided_at": submitted}}
        write_json_atomic(paths.scheduler, {"reason": "", "source": "sacct", **scheduler})
    for n, loss in enumerate(losses, start=first_trial):
        append_json_line(paths.trials, {"trial": n, "job_id": job_id, "status": "ok", "loss": loss,
                                        "objective": loss, "objective_name": "val_loss",
                                        "metrics": {"val_loss": loss, "val_accuracy": 1 - loss}, "duration_s": 60,
                                        "peak_rss_mb": 900, "params": {"n_filters": 8}})
    return paths


def _result(paths: JobPaths, f1: float, auc: float) -> None:
    write_json_atomic(paths.result, {"test": {"accuracy": 0.8, "precision": 0.7, "recall": 0.6, "f1": f1,
                                              "auc": auc, "samples": 100, "threshold": 0.5}, "artifacts": {}})


def make_registry(root: Path) -> None:
    """Write the registry above under ``root``, with the index sync would write for it."""
    done = {"state": "COMPLETED", "max_rss_bytes": 5 * GIB, "elapsed_s": 600}
    alpha = _job(root, "100", "alpha_v1", "alpha", 1, "2026-01-10T09:00:00+00:00", 8, done, (0.4, 0.3, 0.35),
                 output_folder=str(root.parent / "out"))
    _result(alpha, 0.61, 0.83)
    html, _ = report_paths(root, "100")
    html.parent.mkdir(parents=True)
    write_text_atomic(html, "<!DOCTYPE html><title>report of 100</title>")

    oom = _job(root, "200", "beta_v2", "beta", 2, "2026-02-05T09:00:00+00:00", 8,
               {"state": "OUT_OF_MEMORY", "max_rss_bytes": 8 * GIB, "elapsed_s": 300}, (0.5,))
    attempts.mark_child(oom, "201")
    retry = _job(root, "201", "beta_v2", "beta", 2, "2026-02-05T10:00:00+00:00", 12,
                 {"state": "COMPLETED", "max_rss_bytes": 9 * GIB, "elapsed_s": 900}, (0.45, 0.25),
                 parent_job_id="200", attempt=2, first_trial=1)
    _result(retry, 0.7, 0.9)

    _job(root, "300", "gamma_v1", "gamma", 1, "2026-03-01T09:00:00+00:00", 4, {"state": "COMPLETED"}, total=4,
         worker_ids=["300_0", "300_1"])
    for worker, (losses, elapsed, rss) in enumerate((((0.6, 0.55), 400, 2), ((0.5, 0.52), 500, 3))):
        paths = _job(root, f"300_{worker}", "gamma_v1", "gamma", 1, "2026-03-01T09:00:00+00:00", 4,
                     {"state": "COMPLETED", "max_rss_bytes": rss * GIB, "elapsed_s": elapsed}, losses, total=4,
                     search_id="300", worker=worker, first_trial=2 * worker)
    _result(paths, 0.5, 0.75)

    _job(root, "400", f"{HOSTILE}_v1", HOSTILE, 1, "2026-04-01T09:00:00+00:00", 2, {"state": "RUNNING"}, (0.7,),
         total=5, settled=False)

    (root / "jobs" / "500").mkdir()
    (root / "jobs" / "500" / "submission.json").write_text('{"scheduler": ')
    rows = {name: index.current_row(JobPaths(root, name), shown_state) for name in index.job_names(root)}
    index.save(root, {name: row for name, row in rows.items() if row is not None}, "2026-04-01T10:00:00+00:00")
