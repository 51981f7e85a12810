"""A stand-in job process for the coordination tests: the real search loop, claims and heartbeat,
with a trial that sleeps and records loss = learning_rate instead of training Keras.

``python -m tests.unit.jobs.stub_worker CONFIG ROOT JOB_ID TOTAL SLEEP_S``: its claims name this process
(pid and start time), as a real job's do, so a live stand-in is never judged gone, however late its
heartbeat.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from jobs.coordination import Coordinator
from jobs.search import run_search
from orchestrator.core.config_file import load_config
from orchestrator.core.registry import JobPaths


class StubRunner:
    """Records an ok trial with loss = learning_rate after a short sleep; like the real runner, a trial
    cut off by ``abort`` (its claim was taken over) gives no record."""

    def __init__(self, paths: JobPaths, sleep_s: float) -> None:
        self.paths, self.sleep_s = paths, sleep_s
        self.stop_requested = False
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True

    def run(self, tid: int, vals: dict[str, Any], params: dict[str, Any]) -> dict[str, Any] | None:
        started = time.time()
        time.sleep(self.sleep_s)
        if self.aborted:
            return None
        return {"trial": tid, "job_id": self.paths.job_id, "vals": vals, "params": params, "status": "ok",
                "objective": params["learning_rate"], "loss": params["learning_rate"], "duration_s": self.sleep_s,
                "peak_rss_mb": 1.0, "started_s": started, "ended_at": str(time.time())}


def main(argv: list[str]) -> None:
    config_file, root, job_id, total, sleep_s = argv
    config = load_config(config_file)
    paths = JobPaths(Path(root), job_id)
    run_search(config, paths, StubRunner(paths, float(sleep_s)),
               Coordinator(paths, int(total), config.resources.heartbeat_limit_s), log=lambda _: None)


if __name__ == "__main__":
    main(sys.argv[1:])
