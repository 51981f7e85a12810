"""A registry of every kind of search, from real files written the way submit, the job and sync write
them (no training): for the overview page's unit and browser tests.

- ``100`` ``alpha_v1``: completed, 3 trials, artifacts in an ``output_folder``, its report made;
- ``200`` → ``201`` ``beta_v2``: killed for memory, continued by a second attempt with more memory;
- ``300`` ``gamma_v1``: a search of two workers ``300_0`` and ``300_1``, completed;
- ``400``: running, its config name a piece of HTML (names are user input);
- ``500``: a submission that is not JSON (UNREADABLE).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestrator.core import attempts
from orchestrator.core.files import (
    append_json_line,
    write_json_atomic,
    write_text_atomic,
)
from orchestrator.core.registry import JobPaths, create_entry
from orchestrator.present.report import report_paths
from orchestrator.track import index

GIB = 1024**3
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
    rows = {name: index.current_row(JobPaths(root, name)) for name in index.job_names(root)}
    index.save(root, {name: row for name, row in rows.items() if row is not None}, "2026-04-01T10:00:00+00:00")
