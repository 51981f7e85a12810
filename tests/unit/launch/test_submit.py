"""``orch submit`` recording and failure paths, with stand-in SLURM commands on PATH.

The stand-ins only answer like sbatch/scontrol/scancel and log their calls; the
real-scheduler proof is in tests/integration (real SLURM).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Callable

import pytest

from orchestrator.core.registry import JobPaths
from tests.helpers import v4_config


def fake_slurm(bin_dir: Path, sbatch: str, scontrol: str = "exit 0") -> Path:
    """Write sbatch/scontrol/scancel stand-ins that log argv (and sbatch's stdin) to calls.log."""
    bin_dir.mkdir()
    log = bin_dir / "calls.log"
    bodies = {"sbatch": f'cat > "{bin_dir}/stdin"\n{sbatch}', "scontrol": scontrol, "scancel": "exit 0"}
    for name, body in bodies.items():
        path = bin_dir / name
        path.write_text(f'#!/bin/bash\necho "{name} $*" >> "{log}"\n{body}\n')
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return log


@pytest.fixture
def config_path(write_config: Callable[..., Path], data_root: Path) -> Path:
    return write_config(v4_config())


def test_failed_sbatch_prints_the_message_and_records_nothing(
        config_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch,
        orch: Callable[..., tuple[int, str, str]]) -> None:
    log = fake_slurm(workdir / "bin", 'echo "sbatch: error: Batch job submission failed: Invalid account" >&2; exit 1')
    monkeypatch.setenv("PATH", f"{workdir / 'bin'}:{os.environ['PATH']}")
    code, out, err = orch("submit", str(config_path))
    assert code == 1
    assert err.strip() == "orch: error: sbatch failed: sbatch: error: Batch job submission failed: Invalid account"
    assert not (workdir / "registry" / "jobs").exists() or not os.listdir(workdir / "registry" / "jobs")
    assert log.read_text().splitlines() == ["sbatch --parsable --hold"]


def test_failed_release_cancels_the_job_and_removes_its_entry(
        config_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch,
        orch: Callable[..., tuple[int, str, str]]) -> None:
    log = fake_slurm(workdir / "bin", "echo 4242", scontrol='echo "slurm_release: Access denied" >&2; exit 1')
    monkeypatch.setenv("PATH", f"{workdir / 'bin'}:{os.environ['PATH']}")
    code, _, err = orch("submit", str(config_path))
    assert code == 1 and "Access denied" in err
    assert log.read_text().splitlines() == ["sbatch --parsable --hold", "scontrol release 4242", "scancel 4242"]
    assert not (workdir / "registry" / "jobs" / "4242").exists()


def test_submission_is_recorded_before_release_with_the_exact_script(
        config_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch,
        orch: Callable[..., tuple[int, str, str]]) -> None:
    fake_slurm(workdir / "bin", "echo '4242;cluster'",
                     scontrol=f'test -f "{workdir}/registry/jobs/4242/submission.json" || exit 3')
    monkeypatch.setenv("PATH", f"{workdir / 'bin'}:{os.environ['PATH']}")
    code, out, err = orch("submit", str(config_path))
    assert code == 0, err
    assert "submitted cfg_v4 to SLURM: 4242" in out
    entry = workdir / "registry" / "jobs" / "4242"
    assert (entry / "job.sbatch").read_text() == (workdir / "bin" / "stdin").read_text()
    submission = json.loads((entry / "submission.json").read_text())
    assert submission["job_id"] == "4242" and submission["scheduler"] == "slurm"
    assert submission["config"]["label"] == "cfg_v4"
    assert submission["request"]["mem_gb"] == submission["estimate"]["request_gb"]
    assert submission["estimate"]["samples_found"] == submission["data"]["samples"] > 0
    frozen = json.loads((entry / "config.json").read_text())
    assert frozen["name"] == "cfg" and frozen["version"] == 4
    assert all(Path(d).is_absolute() for d in frozen["data_directories"])


def test_dry_run_writes_nothing_and_prints_the_plan(config_path: Path, workdir: Path,
                                                    orch: Callable[..., tuple[int, str, str]]) -> None:
    code, out, _ = orch("submit", "--dry-run", "--local", str(config_path))
    assert code == 0
    assert "estimated peak" in out and "→ requesting 4 GB" in out  # v4: its largest network, 1.9 GB
    assert "#SBATCH --mem=4G" in out
    assert not (workdir / "registry").exists()


def test_array_submission_records_one_entry_per_plane(
        write_config: Callable[..., Path], workdir: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch,
        orch: Callable[..., tuple[int, str, str]]) -> None:
    from orchestrator.launch.synthetic import generate

    generate(workdir / "uvx", files_per_production=2, samples_per_file=40, seed=3)
    cfg = v4_config()
    cfg["data_directories"] = [str(workdir / "uvx" / "es"), str(workdir / "uvx" / "cc")]
    cfg["plane"] = ["U", "V", "X"]
    cfg["dataset_parameters"]["batch_pattern"] = "*_plane{plane}.npz"
    fake_slurm(workdir / "bin", "echo 77")
    monkeypatch.setenv("PATH", f"{workdir / 'bin'}:{os.environ['PATH']}")
    code, out, err = orch("submit", str(write_config(cfg)))
    assert code == 0, err
    assert "77_0 77_1 77_2" in out
    for index, plane in enumerate("UVX"):
        entry = workdir / "registry" / "jobs" / f"77_{index}"
        assert json.loads((entry / "config.json").read_text())["plane"] == plane
        submission = json.loads((entry / "submission.json").read_text())
        assert (submission["array_job_id"], submission["array_task_id"], submission["plane"]) == ("77", index, plane)


def two_plane_config(workdir: Path, workers: int) -> dict:
    """v4 over planes U and X of fresh synthetic data, with ``workers`` workers."""
    from orchestrator.launch.synthetic import generate

    generate(workdir / "ux", files_per_production=2, samples_per_file=40, planes=("U", "X"), seed=3)
    cfg = v4_config()
    cfg["data_directories"] = [str(workdir / "ux" / "es"), str(workdir / "ux" / "cc")]
    cfg["plane"] = ["U", "X"]
    cfg["dataset_parameters"]["batch_pattern"] = "*_plane{plane}.npz"
    cfg["resources"] = {"workers": workers}
    return cfg


def test_workers_and_a_plane_list_make_one_array_and_one_search_per_plane(
        write_config: Callable[..., Path], workdir: Path, monkeypatch: pytest.MonkeyPatch,
        orch: Callable[..., tuple[int, str, str]]) -> None:
    counter = workdir / "next_id"
    counter.write_text("500")
    log = fake_slurm(workdir / "bin", f'n=$(cat "{counter}"); echo $((n + 1)) > "{counter}"; echo $n')
    monkeypatch.setenv("PATH", f"{workdir / 'bin'}:{os.environ['PATH']}")
    code, out, err = orch("submit", str(write_config(two_plane_config(workdir, 3))))
    assert code == 0, err
    assert "to SLURM: 500 501" in out
    assert log.read_text().splitlines() == ["sbatch --parsable --hold", "sbatch --parsable --hold",
                                            "scontrol release 500", "scontrol release 501"]
    assert "#SBATCH --array=0-2" in (workdir / "bin" / "stdin").read_text()
    for search, plane in (("500", "U"), ("501", "X")):
        entry = json.loads((workdir / "registry" / "jobs" / search / "submission.json").read_text())
        assert entry["worker_ids"] == [f"{search}_{n}" for n in range(3)] and entry["plane"] == plane
        for n in range(3):
            worker = json.loads((workdir / "registry" / "jobs" / f"{search}_{n}" / "submission.json").read_text())
            assert (worker["search_id"], worker["worker"], worker["array_task_id"], worker["plane"]) == (
                search, n, n, plane)
    code, out, _ = orch("status")
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["501", "500"]  # one row per search


def test_a_failed_second_array_cancels_the_first_and_leaves_no_entry(
        write_config: Callable[..., Path], workdir: Path, monkeypatch: pytest.MonkeyPatch,
        orch: Callable[..., tuple[int, str, str]]) -> None:
    counter = workdir / "calls"
    log = fake_slurm(workdir / "bin", f'echo x >> "{counter}"; [ "$(wc -l < "{counter}")" -eq 1 ] || '
                                      '{ echo "sbatch: error: QOSMaxSubmitJobPerUserLimit" >&2; exit 1; }; echo 600')
    monkeypatch.setenv("PATH", f"{workdir / 'bin'}:{os.environ['PATH']}")
    code, _, err = orch("submit", str(write_config(two_plane_config(workdir, 2))))
    assert code == 1 and "QOSMaxSubmitJobPerUserLimit" in err
    assert log.read_text().splitlines() == ["sbatch --parsable --hold", "sbatch --parsable --hold", "scancel 600"]
    assert not os.listdir(workdir / "registry" / "jobs")


def test_a_search_of_workers_is_resubmitted_one_worker_at_a_time(
        write_config: Callable[..., Path], workdir: Path, monkeypatch: pytest.MonkeyPatch,
        orch: Callable[..., tuple[int, str, str]]) -> None:
    cfg = v4_config()
    cfg["resources"] = {"workers": 2}
    fake_slurm(workdir / "bin", "echo 700")
    monkeypatch.setenv("PATH", f"{workdir / 'bin'}:{os.environ['PATH']}")
    assert orch("submit", str(write_config(cfg)))[0] == 0
    code, _, err = orch("resubmit", "700")
    assert code == 2 and "is a search of 2 workers; a new attempt continues one worker: orch resubmit 700_0" in err
    JobPaths(workdir / "registry", "700_1").scheduler.write_text(json.dumps({"state": "OUT_OF_MEMORY"}))
    fake_slurm(workdir / "bin2", "echo 701")
    monkeypatch.setenv("PATH", f"{workdir / 'bin2'}:{os.environ['PATH']}")
    code, out, err = orch("resubmit", "700_1", "--mem", "8G")
    assert code == 0 and out.strip().endswith("701"), err
    retry = json.loads((workdir / "registry" / "jobs" / "701" / "submission.json").read_text())
    assert (retry["search_id"], retry["worker"], retry["parent_job_id"], retry["attempt"]) == ("700", 1, "700_1", 2)
    assert "--array" not in (workdir / "bin2" / "stdin").read_text()  # one job, not a new array
    assert (workdir / "registry" / "jobs" / "700_1" / "children" / "701").exists()


def test_validate_names_the_proposer_and_its_random_start_up(write_config: Callable[..., Path], data_root: Path,
                                                             orch: Callable[..., tuple[int, str, str]]) -> None:
    expected = {"tpe": "proposer hyperopt TPE, 20 of 25 trials random start-up",
                "optuna_tpe": "proposer Optuna TPE (multivariate), 10 of 25 trials random start-up",
                "random": "proposer random search, all 25 trials random"}
    for algorithm, line in expected.items():
        cfg = v4_config()
        cfg["model_parameters"]["algorithm"] = algorithm
        code, out, err = orch("validate", str(write_config(cfg)))
        assert code == 0, err
        assert line in out.splitlines()


def test_optuna_missing_where_the_job_would_run_is_refused_before_queueing(
        write_config: Callable[..., Path], data_root: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch,
        orch: Callable[..., tuple[int, str, str]]) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "optuna" else real(name, *a))
    cfg = v4_config()
    cfg["model_parameters"]["algorithm"] = "optuna_tpe"
    path = write_config(cfg)
    code, out, err = orch("submit", "--local", str(path))
    assert code == 2 and out == ""
    assert err.startswith(f"orch: error: {path}: model_parameters.algorithm: \"optuna_tpe\" needs the optuna package")
    assert len(err.splitlines()) == 1 and not (workdir / "registry" / "jobs").exists()


def test_resubmit_mem_is_held_to_the_site_limit_and_a_job_is_continued_once(
        write_config: Callable[..., Path], workdir: Path, monkeypatch: pytest.MonkeyPatch,
        orch: Callable[..., tuple[int, str, str]]) -> None:
    (workdir / "sites").mkdir()
    (workdir / "sites" / "default.yaml").write_text("max_mem_gb: 16\n")
    monkeypatch.setenv("ORCH_SITE_DIR", str(workdir / "sites"))
    fake_slurm(workdir / "bin", "echo 800")
    monkeypatch.setenv("PATH", f"{workdir / 'bin'}:{os.environ['PATH']}")
    assert orch("submit", str(write_config(v4_config())))[0] == 0
    JobPaths(workdir / "registry", "800").scheduler.write_text(json.dumps({"state": "OUT_OF_MEMORY"}))
    code, _, err = orch("resubmit", "800", "--mem", "500G")
    assert code == 2 and "--mem (500 GB) exceeds the partition limit of site 'default' (16 GB)" in err
    assert not (workdir / "registry" / "jobs" / "800" / "next_attempt.json").exists()  # refused: nothing reserved
    frozen = workdir / "registry" / "jobs" / "800" / "config.json"
    original = frozen.read_text()
    frozen.write_text(original.replace('"hp_max_evals": 25', '"hp_max_evals": 2500'))  # a member's edit
    code, _, err = orch("resubmit", "800")
    assert code == 2 and f"{frozen}: is not the config this job was submitted with" in err
    frozen.write_text(original)
    fake_slurm(workdir / "bin2", "echo 801")
    monkeypatch.setenv("PATH", f"{workdir / 'bin2'}:{os.environ['PATH']}")
    assert orch("resubmit", "800", "--mem", "12G")[0] == 0
    code, _, err = orch("resubmit", "800")
    assert code == 2 and "job 800: is already continued by 801; a new attempt continues the newest" in err


def test_only_jobs_predicted_by_todays_memory_model_calibrate_it(tmp_path: Path) -> None:
    from orchestrator.core import index
    from orchestrator.launch.memory import MODEL
    from orchestrator.launch.plan import measured_history

    def row(job_id: str, model: str | None, state: str = "COMPLETED") -> dict[str, object]:
        return {"job_id": job_id, "name": "prod", "state": state, "measured_peak_gb": 1.3,
                "estimated_peak_gb": 1.9, "estimate_model": model, "submitted_at": f"2026-12-0{job_id}T00:00:00+00:00"}

    index.save(tmp_path, {"1": row("1", None), "2": row("2", MODEL), "3": row("3", MODEL, "FAILED"),
                          "4": row("4", MODEL)}, "2026-12-02T00:00:00+00:00")
    assert measured_history(tmp_path, "prod") == [("4", 1.3, 1.9), ("2", 1.3, 1.9)]  # the old model's 1 is not
