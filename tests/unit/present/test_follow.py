"""`orch submit --wait` follows a search in the registry: a line per finished trial without a terminal,
a progress bar on one, and a summary once the search ended (here from records written as the job and
the local executor write them; tests/integration/test_job.py follows real searches)."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from orchestrator.core.files import append_json_line, write_json_atomic
from orchestrator.core.registry import JobPaths, create_entry
from orchestrator.present import follow

T0 = datetime(2026, 12, 2, 8, 0, tzinfo=timezone.utc).isoformat()
JOB = "local-20261202T080000-bbbbbb"


def local_search(root: Path, total: int, runner: dict[str, Any]) -> JobPaths:
    submission = {"scheduler": "local", "submitted_at": T0, "request": {"mem_gb": 8},
                  "config": {"label": "demo_v1", "name": "demo"}, "attempt": 1, "estimate": {"peak_gb": 1}}
    paths = create_entry(root, JOB, {"submission.json": json.dumps(submission),
                                     "config.json": json.dumps({"model_parameters": {"hp_max_evals": total}})})
    write_json_atomic(paths.local_state, {**runner, "host": socket.gethostname(), "pid": 1,
                                          "started_at": T0})
    return paths


def trial(paths: JobPaths, n: int, loss: float, status: str = "ok") -> None:
    record = {"trial": n, "job_id": paths.job_id, "status": status, "objective_name": "val_loss",
              "duration_s": 42.0, "params": {"n_filters": 8 * (n + 1), "learning_rate": 0.001}, "epochs_run": 3}
    if status == "failed":
        record["reason"] = "exit code 1"
    else:
        record.update(objective=loss, loss=loss)
    append_json_line(paths.trials, record)


def end(paths: JobPaths, code: int) -> None:
    state = json.loads(paths.local_state.read_text())
    write_json_atomic(paths.local_state, {**state, "ended_at": T0, "exit_code": code, "cancelled": False})


def test_each_trial_is_a_line_as_it_ends_then_a_summary_with_the_test_metrics_and_the_report(
        tmp_path: Path, executor_task: Callable[[str], dict[str, Any]]) -> None:
    paths = local_search(tmp_path, 3, executor_task(JOB))
    trial(paths, 0, 0.40)

    def job() -> None:  # the rest of the search, while it is followed
        time.sleep(0.3)
        trial(paths, 1, 0.30)
        trial(paths, 2, 0.0, "failed")
        write_json_atomic(paths.result, {"test": {"accuracy": 0.9, "f1": 0.61, "auc": 0.93, "samples": 120}})
        end(paths, 0)

    writer = threading.Thread(target=job)
    writer.start()
    out = io.StringIO()
    made: list[str] = []
    code = follow.follow(tmp_path, [JOB], 0.05, out,
                         make_report=lambda root, job_id: made.append(job_id) or root / f"{job_id}_report.html")
    writer.join()
    lines = out.getvalue().splitlines()
    assert code == 0 and made == [JOB]
    assert lines[0].startswith("trial 1 (1/3) val_loss 0.4000 in 42 s · best val_loss 0.4000 (trial 1) · elapsed ")
    assert "about" in lines[0] and "left" in lines[0]
    assert lines[1].startswith("trial 2 (2/3) val_loss 0.3000 in 42 s · best val_loss 0.3000 (trial 2)")
    assert lines[2].startswith("trial 3 (3/3) failed: exit code 1 in 42 s · best val_loss 0.3000 (trial 2)")
    assert "left" not in lines[2]
    assert lines[4].startswith(f"{JOB} demo_v1 COMPLETED after ") and lines[4].endswith(": 3/3 trials, 1 failed")
    assert lines[5:] == ["best     trial 2: val_loss 0.3000", "         learning_rate=0.001 n_filters=16",
                         "test     accuracy 0.9000 · F1 0.6100 · AUC 0.9300 (120 samples)",
                         f"result   {paths.result}", f"report   {tmp_path / (JOB + '_report.html')}",
                         f"next     orch status {JOB} · orch report {JOB} · orch compare demo_v1"]


def test_a_search_that_failed_exits_1_and_points_to_its_log(tmp_path: Path, executor_task: Callable[[str], dict[str, Any]]) -> None:
    paths = local_search(tmp_path, 4, executor_task(JOB))
    end(paths, 1)
    out = io.StringIO()
    assert follow.follow(tmp_path, [JOB], 0.05, out, make_report=lambda root, job_id: root) == 1
    text = out.getvalue()
    assert f"{JOB} demo_v1 FAILED after " in text and ": 0/4 trials" in text and "report" not in text
    assert f"next     orch status {JOB} (its log) · orch sync" in text


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_a_progress_bar_counts_the_trials_and_shows_the_best(
        tmp_path: Path, executor_task: Callable[[str], dict[str, Any]]) -> None:
    paths = local_search(tmp_path, 2, executor_task(JOB))
    trial(paths, 0, 0.25)
    trial(paths, 1, 0.5)
    end(paths, 0)
    out = Terminal()
    follow.follow(tmp_path, [JOB], 0.05, out, make_report=lambda root, job_id: root)
    text = out.getvalue()
    assert "2/2" in text and "best val_loss 0.2500 (trial 1)" in text and "trial 1 (1/2)" not in text
