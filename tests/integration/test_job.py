"""The training job for real: Keras on tiny generated data, through the local executor."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from orchestrator.scheduler import local
from orchestrator.core.records import read_json_lines
from orchestrator.core.registry import JobPaths
from orchestrator.launch.submit import plan, submit

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def start(config: Path, root: Path) -> tuple[JobPaths, Any]:
    job_ids, runner = submit(plan(config, root), use_local=True)
    return JobPaths(root, job_ids[0]), runner


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
    assert code == 0 and "state    COMPLETED  (the local runner's record)" in out


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
    paths, runner = start(small_config("kill", evals=5), workdir / "registry")
    wait_until = time.monotonic() + 120
    while len(records(paths)) < 1 and time.monotonic() < wait_until:
        time.sleep(0.2)
    time.sleep(random.uniform(0, 4))  # somewhere inside a later trial, or between two
    os.killpg(runner.pid, signal.SIGKILL)  # the whole job, as the scheduler would
    runner.wait()
    before = records(paths)
    assert 1 <= len(before) < 5

    rerun = local.launch(paths.root, [[paths.job_id]], paths.script.read_text())  # started again, as a requeue would
    assert rerun.wait(timeout=300) == 0
    after = records(paths)
    assert [r["trial"] for r in after] == list(range(5))  # unique, complete, hp_max_evals in total
    assert after[:len(before)] == before  # nothing finished was lost or rewritten
    assert json.loads(paths.result.read_text())["trials_total"] == 5
    assert json.loads(paths.run.read_text())["restarts"] == 1


def test_the_time_limit_signal_saves_state_and_the_job_resumes(small_config: Callable[..., Path],
                                                               workdir: Path) -> None:
    paths, runner = start(small_config("usr1", evals=4), workdir / "registry")
    while not records(paths):
        time.sleep(0.2)
    time.sleep(1.5)
    job_pid = json.loads(paths.local_state.read_text())["pid"]  # bash exec'd into the job process
    os.kill(job_pid, signal.SIGUSR1)
    assert runner.wait(timeout=120) == 75
    run = json.loads(paths.run.read_text())
    assert run["status"] == "interrupted"
    done = records(paths)
    assert local.launch(paths.root, [[paths.job_id]], paths.script.read_text()).wait(timeout=300) == 0
    assert [r["trial"] for r in records(paths)] == [0, 1, 2, 3]
    assert records(paths)[:len(done)] == done


def test_same_seed_same_parameter_sequence(small_config: Callable[..., Path], workdir: Path) -> None:
    sequences = []
    for seed in (42, 42, 43):
        paths, runner = start(small_config(f"seed{seed}", evals=3, seed=seed), workdir / "registry")
        assert runner.wait(timeout=300) == 0
        sequences.append([r["params"] for r in records(paths)])
    assert sequences[0] == sequences[1]
    assert sequences[0] != sequences[2]


def test_batch_size_reaches_fit(small_config: Callable[..., Path], workdir: Path) -> None:
    cfg = small_config("batch", evals=1)
    paths, runner = start(cfg, workdir / "registry")
    assert runner.wait(timeout=300) == 0
    [record] = records(paths)
    train = json.loads(paths.data_record.read_text())["splits"]["train"]["samples"]
    assert record["params"]["batch_size"] == 32
    assert record["steps_per_epoch"] == -(-train // 32)
