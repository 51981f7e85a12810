"""Batch scripts: golden files for the shipped configs, and no config string reaching a shell.

Set ORCH_UPDATE_GOLDEN=1 to rewrite the golden files after an intended change (and review the diff).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path
from typing import Callable

import pytest

from orchestrator.core.config_file import load_config
from orchestrator.core.errors import InputError
from orchestrator.core.units import slurm_mem
from orchestrator.launch.sbatch import (
    build_request,
    format_time,
    render,
    submitted_hashes,
)
from orchestrator.launch.site import load_profile
from tests.helpers import REPO, v4_config

GOLDEN = REPO / "tests" / "golden"
SHIPPED = sorted((REPO / "json").glob("*/*.json"))


def render_fixed(config_path: Path, root: Path = Path("/shared/orch-registry"), estimate_gb: float = 28,
                 python: str = "/opt/orch/venv/bin/python") -> str:
    config = load_config(config_path)
    profile = dataclasses.replace(load_profile(config.resources.site), python=python)
    request = build_request(config, profile, estimate_gb)
    return render(config, request, profile, root)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_golden_scripts_under_the_default_profile(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_DATA_ROOT", "/data/mt_identifier")
    monkeypatch.delenv("ORCH_SITE_DIR", raising=False)
    hashes = ",".join(submitted_hashes(load_config(path)))  # of frozen configs naming this checkout's paths
    script = render_fixed(path).replace(f"--config-sha256 {hashes}\n", "--config-sha256 <sha256 of config.json>\n")
    golden = GOLDEN / f"{path.stem}.sbatch"
    if os.environ.get("ORCH_UPDATE_GOLDEN"):
        golden.write_text(script)
    assert script == golden.read_text()


def test_array_over_planes(write_config: Callable[..., Path]) -> None:
    cfg = v4_config()
    cfg["plane"] = ["U", "V", "X"]
    cfg["dataset_parameters"]["batch_pattern"] = "*_plane{plane}.npz"
    cfg["resources"]["max_parallel"] = 2
    script = render_fixed(write_config(cfg))
    assert "#SBATCH --array=0-2%2\n" in script
    assert "#SBATCH --output=/shared/orch-registry/jobs/%A_%a/job.out\n" in script


def test_config_memory_wins_over_the_estimate_and_the_partition_cap(write_config: Callable[..., Path],
                                                                    tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = v4_config()
    cfg["resources"].update(mem_gb=20.5, site="capped")
    (tmp_path / "sites").mkdir()
    (tmp_path / "sites" / "capped.yaml").write_text("max_mem_gb: 16\npartition: gpu\n")
    monkeypatch.setenv("ORCH_SITE_DIR", str(tmp_path / "sites"))
    with pytest.raises(InputError, match=r"resources.mem_gb \(20.5 GB\) exceeds the partition limit"):
        render_fixed(write_config(cfg))
    cfg["resources"]["mem_gb"] = 12.5
    script = render_fixed(write_config(cfg))
    assert "#SBATCH --mem=12800M\n" in script and "#SBATCH --partition=gpu\n" in script


def test_unknown_profile_key_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "site.yaml").write_text("partiton: gpu\n")
    monkeypatch.setenv("ORCH_SITE_DIR", str(tmp_path))
    with pytest.raises(InputError, match="partiton: unknown key; did you mean partition?"):
        load_profile("site")


def test_hostile_registry_path_is_quoted_and_never_executed(write_config: Callable[..., Path],
                                                            tmp_path: Path) -> None:
    """The rendered script, run by bash, must treat a $(...) in the registry path as text."""
    marker = tmp_path / "pwned"
    root = tmp_path / f"reg$(touch${{IFS}}{marker})`touch${{IFS}}{marker}`"
    script = render_fixed(write_config(), root=root, python="/bin/echo")
    result = subprocess.run(["bash", "-c", script, "job"], env={**os.environ, "ORCH_JOB_ID": "123"},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert not marker.exists()
    assert f"-m jobs.mt_identifier --registry {root} --config-sha256" in result.stdout


@pytest.mark.parametrize("root", ["/tmp/my registry", "/tmp/reg%j", "/tmp/reg'x"])
def test_registry_paths_sbatch_cannot_carry_are_refused(write_config: Callable[..., Path], root: str) -> None:
    with pytest.raises(InputError, match="#SBATCH --output cannot carry it"):
        render_fixed(write_config(), root=Path(root))


@pytest.mark.parametrize("gb, text", [(20, "20G"), (2.5, "2560M"), (0.1, "103M")])
def test_slurm_mem(gb: float, text: str) -> None:
    assert slurm_mem(gb) == text


@pytest.mark.parametrize("minutes, text", [(30, "00:30:00"), (720, "12:00:00"), (2880, "2-00:00:00"),
                                           (1501, "1-01:01:00")])
def test_format_time(minutes: int, text: str) -> None:
    assert format_time(minutes) == text
