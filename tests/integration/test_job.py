"""The training job for real: Keras on tiny generated data, through the local executor."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from orchestrator.core.records import read_json_lines
from orchestrator.core.registry import JobPaths
from orchestrator.launch.plan import plan
from orchestrator.launch.submit import submit
from orchestrator.scheduler.local_backend import Local
from tests.helpers import REPO, local_end, poison, release_local

pytestmark = pytest.mark.slow


def start(config: Path, root: Path) -> JobPaths:
    """Submit ``config`` to the local executor; the paths of its job."""
    return JobPaths(root, submit(plan(config, root), Local())[0])


def records(paths: JobPaths) -> list[dict[str, Any]]:
    return list(read_json_lines(paths.trials))


def test_the_readmes_first_command_shows_each_trial_a_summary_and_its_end_with_no_sync(
        workdir: Path, orch: Callable[..., tuple[int, str, str]]) -> None:
    demo = workdir / "repo" / "json" / "demo" / "demo.json"
    demo.parent.mkdir(parents=True)
    shutil.copyfile(REPO / "json" / "demo" / "demo.json", demo)
    assert orch("demo-data", str(workdir / "repo" / "demo-data"))[0] == 0
    code, out, err = orch("submit", "--local", "--wait", str(demo))
    assert code == 0, err
    job_id = out.split(": ")[1].split()[0]
    lines = out.splitlines()
    trial_lines = [line for line in lines if line.startswith("trial ")]
    assert [line.split(" (")[1].split(")")[0] for line in trial_lines] == ["1/3", "2/3", "3/3"], out
    assert all(" · best val_loss " in line for line in trial_lines)
    result = json.loads(JobPaths(workdir / "registry", job_id).result.read_text())
    test_line = next(line for line in lines if line.startswith("test     "))
    assert f"F1 {result['test']['f1']:.4f}" in test_line
    report = Path(next(line for line in lines if line.startswith("report   ")).split()[1])
    assert report.name == f"{job_id}_report.html" and report.stat().st_size > 10_000
    assert any(line.startswith(f"{job_id} demo") and " COMPLETED after " in line for line in lines)
    code, out, _ = orch("status", job_id)  # no orch sync in between
    assert code == 0 and "state    COMPLETED  (the local executor's record)" in out


def test_demo_search_records_every_trial_and_a_usable_result(
        small_config: Callable[..., Path], workdir: Path, orch: Callable[..., tuple[int, str, str]]) -> None:
    code, out, err = orch("submit", "--local", "--wait", str(small_config("tiny", evals=3)))
    assert code == 0, err
    job_id = out.split(": ")[1].split()[0]
    assert job_id.startswith("local-")
    paths = JobPaths(workdir / "registry", job_id)
    trials = records(paths)
    assert [r["trial"] for r in trials] == [0, 1, 2]
    for r in trials:
        assert r["status"] == "ok" and r["objective_name"] == "val_loss"
        assert r["objective"] == r["metrics"]["val_loss"]
        assert r["params"]["n_filters"] in (4, 8) and 1e-4 <= r["params"]["learning_rate"] <= 1e-2
        assert 1 <= r["best_epoch"] <= r["epochs_run"] <= 2 and r["peak_rss_mb"] > 100
    result = json.loads(paths.result.read_text())
    best = min(trials, key=lambda r: r["loss"])
    assert result["best_trial"] == best["trial"] and result["best_params"] == best["params"]
    assert set(result["test"]) >= {"accuracy", "precision", "recall", "f1", "auc", "confusion_matrix"}
    assert json.loads(paths.run.read_text())["status"] == "completed"
    assert json.loads(paths.local_state.read_text())["exit_code"] == 0
    assert not paths.cache.exists()  # the data cache is removed once the job completed
    assert not [p for p in (workdir / "registry").rglob("*") if p.suffix in (".pkl", ".pickle")]  # submitit's stay private

    import keras

    model = keras.models.load_model(result["artifacts"]["model"])
    predictions = np.load(result["artifacts"]["predictions"])
    scores = model.predict(np.zeros((3, 128, 16, 1), dtype=np.float32), verbose=0)
    assert scores.shape == (3, 1) and np.all((scores >= 0) & (scores <= 1))
    assert len(predictions["scores"]) == result["test"]["samples"] == len(predictions["metadata"])
    assert Path(result["artifacts"]["model"]).name == f"{job_id}_best_model.keras"

    code, out, err = orch("sync")
    assert code == 0 and f"{job_id}: new → COMPLETED" in out, err
    scheduler = json.loads(paths.scheduler.read_text())
    assert (scheduler["source"], scheduler["recovery"]["decision"]) == ("local", "completed")
    code, out, _ = orch("status", job_id)
    assert "state    COMPLETED" in out and "trials   [####################] 3/3" in out
    assert f"test     accuracy {result['test']['accuracy']:.4f}" in out
    code, out, _ = orch("status")
    assert out.splitlines()[1].split()[:4] == [job_id, "tiny_v1", "X", "COMPLETED"]


def test_kill_9_at_a_random_point_loses_no_finished_trial(small_config: Callable[..., Path], workdir: Path) -> None:
    paths = start(small_config("kill", evals=5), workdir / "registry")
    wait_until = time.monotonic() + 120
    while len(records(paths)) < 1 and time.monotonic() < wait_until:
        time.sleep(0.2)
    time.sleep(random.uniform(0, 4))  # somewhere inside a later trial, or between two
    os.kill(json.loads(paths.local_state.read_text())["pid"], signal.SIGKILL)  # the job; its trial dies with it
    assert local_end(paths)["exit_code"] == -signal.SIGKILL
    before = records(paths)
    assert 1 <= len(before) < 5

    release_local(paths.root, [paths.job_id], paths.script.read_text())  # started again, as a requeue would
    assert local_end(paths)["exit_code"] == 0
    after = records(paths)
    assert [r["trial"] for r in after] == list(range(5))  # unique, complete, hp_max_evals in total
    assert after[:len(before)] == before  # nothing finished was lost or rewritten
    assert json.loads(paths.result.read_text())["trials_total"] == 5
    assert json.loads(paths.run.read_text())["restarts"] == 1


def test_the_time_limit_signal_saves_state_and_the_job_resumes(
        small_config: Callable[..., Path], workdir: Path, orch: Callable[..., tuple[int, str, str]]) -> None:
    # a 1-minute limit: submitit's executor signals the job 30 s before it, as SLURM's --signal would
    paths = start(small_config("limit", evals=8, resources={"time": "00:01:00"}), workdir / "registry")
    ended = local_end(paths, timeout_s=120)
    assert (ended["exit_code"], ended["timed_out"]) == (75, True)
    assert json.loads(paths.run.read_text())["status"] == "interrupted"
    code, out, _ = orch("status", paths.job_id)
    assert code == 0 and "state    TIMEOUT" in out
    done = records(paths)
    assert 1 <= len(done) < 8
    release_local(paths.root, [paths.job_id], paths.script.read_text())  # started again, as a requeue would
    assert local_end(paths)["exit_code"] == 0
    assert [r["trial"] for r in records(paths)] == list(range(8))
    assert records(paths)[:len(done)] == done


def test_same_seed_same_parameter_sequence(small_config: Callable[..., Path], workdir: Path) -> None:
    sequences = []
    for seed in (42, 42, 43):
        paths = start(small_config(f"seed{seed}", evals=3, seed=seed), workdir / "registry")
        assert local_end(paths)["exit_code"] == 0
        sequences.append([r["params"] for r in records(paths)])
    assert sequences[0] == sequences[1]
    assert sequences[0] != sequences[2]


def test_batch_size_reaches_fit(small_config: Callable[..., Path], workdir: Path) -> None:
    cfg = small_config("batch", evals=1)
    paths = start(cfg, workdir / "registry")
    assert local_end(paths)["exit_code"] == 0
    [record] = records(paths)
    train = json.loads(paths.data_record.read_text())["splits"]["train"]["samples"]
    assert record["params"]["batch_size"] == 32
    assert record["steps_per_epoch"] == -(-train // 32)


def test_debug_runs_the_job_and_its_trials_in_this_process(
        small_config: Callable[..., Path], workdir: Path, orch: Callable[..., tuple[int, str, str]]) -> None:
    code, out, err = orch("submit", "--debug", "--trials", "1", str(small_config("debug", evals=3)))
    assert code == 1, err  # the search did not complete: one trial of three, as asked
    job_id = out.split(": ")[1].split()[0]
    paths = JobPaths(workdir / "registry", job_id)
    state = json.loads(paths.local_state.read_text())
    assert state["runner_pid"] == state["pid"] == os.getpid() and state["exit_code"] == 75  # this process ran it
    assert [r["trial"] for r in records(paths)] == [0] and records(paths)[0]["status"] == "ok"
    assert json.loads(paths.run.read_text())["status"] == "interrupted"
    assert json.loads(paths.submission.read_text())["scheduler"] == "debug"
    code, out, err = orch("sync")
    assert code == 0 and "not recovered: a debugging run" in json.loads(paths.scheduler.read_text())["recovery"][
        "decision"], err


def test_debug_stops_in_the_debugger_where_the_job_failed(workdir: Path) -> None:
    data = workdir / "data"
    orch = [sys.executable, "-m", "orchestrator", "--registry", str(workdir / "registry")]
    assert subprocess.run([*orch, "demo-data", str(data), "--files", "20", "--samples", "30"], timeout=120).returncode == 0
    poison(sorted((data / "es").glob("*_planeX.npz"))[-1])  # one the pre-flight does not sample: found at run time
    config = workdir / "repo" / "json" / "late.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    demo = json.loads((REPO / "json" / "demo" / "demo.json").read_text())
    config.write_text(json.dumps({**demo, "data_directories": [str(data / "es"), str(data / "cc")]}))
    run = subprocess.run([*orch, "submit", "--debug", str(config)], input="where\nquit\n", capture_output=True,
                         text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert run.returncode != 0
    assert "(Pdb)" in run.stdout and "non-finite pixels" in run.stdout + run.stderr
    assert "data.py" in run.stdout  # `where` showed the job's own frames: it stopped where it failed
    [paths] = [JobPaths.from_dir(d) for d in (workdir / "registry" / "jobs").iterdir()]
    assert json.loads(paths.run.read_text())["status"] == "failed"
    assert json.loads(paths.local_state.read_text())["exit_code"] == 1


def test_the_planes_of_a_local_array_run_in_turn(small_config: Callable[..., Path], workdir: Path,
                                                  orch: Callable[..., tuple[int, str, str]]) -> None:
    code, out, err = orch("submit", "--local", "--wait", str(small_config("planes", plane=["U", "X"], evals=1,
                                                                          epochs=1)))
    assert code == 0, err
    first, second = (json.loads(JobPaths(workdir / "registry", job_id).local_state.read_text())
                     for job_id in out.split(": ")[1].split("\n")[0].split())
    assert first["exit_code"] == second["exit_code"] == 0
    assert second["started_at"] >= first["ended_at"]  # started by the first one's task as it ended
    assert first["runner_pid"] != second["runner_pid"]  # each a submitit job of its own, with its own time limit
