"""Shared by the parallel-search benches: analytic objectives and worker processes that run the real
trial loop (claims, history, proposals, records in a real registry) with the objective as a stand-in
for Keras. Not a bench itself."""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from jobs.coordination import Coordinator, Snapshot
from jobs.search import run_search
from orchestrator.core.config import Config
from orchestrator.core.config_file import load_config
from orchestrator.core.records import read_json_lines
from orchestrator.core.registry import JobPaths, create_entry
from orchestrator.core.space import SearchParam, SearchSpace

REPO = Path(__file__).resolve().parent.parent

_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8],
               [17, 8, 0.05, 10, 0.1, 14]])
_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                      [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(x: list[float]) -> float:
    """Hartmann-6 on [0, 1]^6; minimum -3.32237."""
    v = np.asarray(x)
    return float(-np.sum(_ALPHA * np.exp(-np.sum(_A * (v - _P) ** 2, axis=1))))


def branin(x: list[float]) -> float:
    """Branin on [-5, 10] × [0, 15]; minimum 0.397887."""
    x1, x2 = x
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


FUNCTIONS: dict[str, tuple[Callable[[list[float]], float], list[tuple[float, float]]]] = {
    "hartmann6": (hartmann6, [(0.0, 1.0)] * 6),
    "branin": (branin, [(-5.0, 10.0), (0.0, 15.0)]),
}


def config_for(function: str, total: int, startup: int, seed: int, heartbeat_limit_s: float = 60,
               algorithm: str = "tpe") -> Config:
    """The demo config with the analytic function's box as its search space and the given proposer
    (random search: every trial a start-up trial, as the config reader makes it)."""
    base = load_config(REPO / "json" / "demo" / "demo.json", resolve_paths=False)
    _, bounds = FUNCTIONS[function]
    space = SearchSpace(tuple(SearchParam(f"x{i}", "uniform", b, False) for i, b in enumerate(bounds)))
    startup = total if algorithm == "random" else min(startup, total)
    model = dataclasses.replace(base.model, hp_max_evals=total, algorithm=algorithm, startup_trials=startup,
                                space=space)
    return dataclasses.replace(base, model=model, dataset=dataclasses.replace(base.dataset, random_seed=seed),
                               resources=dataclasses.replace(base.resources, heartbeat_limit_s=heartbeat_limit_s))


def new_search(root: Path, search_id: str, workers: int) -> list[JobPaths]:
    """A search entry with its worker entries, as ``orch submit`` makes them; the workers' paths."""
    ids = [f"{search_id}_{n}" for n in range(workers)]
    create_entry(root, search_id, {"submission.json": json.dumps({"worker_ids": ids})})
    for n, job_id in enumerate(ids):
        create_entry(root, job_id, {"submission.json": json.dumps({"search_id": search_id, "worker": n})})
    return [JobPaths(root, job_id) for job_id in ids]


class StubRunner:
    """A trial: the analytic function at the point after ``sleep_s``; also times the coordination
    since the previous trial of this worker ended (claim, history rebuild, proposal, record)."""

    def __init__(self, paths: JobPaths, function: str, sleep_s: float) -> None:
        self.paths, self.sleep_s = paths, sleep_s
        self.objective = FUNCTIONS[function][0]
        self.stop_requested = False
        self.last = (time.monotonic(), time.process_time())

    def abort(self) -> None:
        self.stop_requested = True

    def run(self, tid: int, vals: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        wall, cpu = time.monotonic(), time.process_time()
        coordination = {"coordination_s": wall - self.last[0], "coordination_cpu_s": cpu - self.last[1]}
        time.sleep(self.sleep_s)
        loss = self.objective([params[f"x{i}"] for i in range(len(params))])
        self.last = (time.monotonic(), time.process_time())
        return {"trial": tid, "job_id": self.paths.job_id, "vals": vals, "params": params, "status": "ok",
                "objective": loss, "loss": loss, "duration_s": self.sleep_s, "peak_rss_mb": 0.0,
                "ended_at": f"{time.time():.6f}", **coordination}


class NoLiar(Coordinator):
    """The real coordination, except that trials running elsewhere are not shown to the proposer."""

    def pending(self, view: Snapshot) -> list[tuple[int, dict[str, Any]]]:
        return []


def _worker(config: Config, paths: JobPaths, function: str, sleep_s: float, liar: bool) -> None:
    coordinator = (Coordinator if liar else NoLiar)(paths, config.model.hp_max_evals,
                                                    config.resources.heartbeat_limit_s)
    run_search(config, paths, StubRunner(paths, function, sleep_s), coordinator, log=lambda _: None)


def run_workers(config: Config, workers: list[JobPaths], function: str, sleep_s: float,
                liar: bool = True) -> list[dict[str, Any]]:
    """Run one process per worker until the search is done; every record written, by trial."""
    context = multiprocessing.get_context("fork")  # hyperopt is imported once, before the fork
    procs = [context.Process(target=_worker, args=(config, w, function, sleep_s, liar)) for w in workers]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    if any(p.exitcode for p in procs):
        raise RuntimeError(f"worker exit codes {[p.exitcode for p in procs]}")
    return sorted((r for w in workers for r in read_json_lines(w.trials)), key=lambda r: r["trial"])
