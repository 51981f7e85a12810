"""Where site profiles are found: ORCH_SITE_DIR, then the user config's site_dir, then the shipped ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.core.errors import InputError
from orchestrator.launch.site import load_profile, profile_dirs, shipped_dir
from tests.helpers import REPO


@pytest.fixture
def sites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No ORCH_SITE_DIR and an empty user config folder (``tmp_path/xdg``); returns ``tmp_path``."""
    monkeypatch.delenv("ORCH_SITE_DIR", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    return tmp_path


def profiles(folder: Path, **partitions: str) -> Path:
    """Make ``folder`` holding one profile per name, each naming its partition."""
    folder.mkdir(parents=True)
    for name, partition in partitions.items():
        (folder / f"{name}.yaml").write_text(f"partition: {partition}\n")
    return folder


def write_user_config(sites: Path, text: str) -> Path:
    path = sites / "xdg" / "orch" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_running_from_the_checkout_the_shipped_profiles_are_its_slurm_templates(sites: Path) -> None:
    assert shipped_dir() == REPO / "slurm_templates"
    assert profile_dirs() == [REPO / "slurm_templates"]
    profile = load_profile("default")
    assert profile.path == REPO / "slurm_templates" / "default.yaml" and profile.partition is None


def test_a_profile_in_orch_site_dir_wins_and_the_others_are_still_found(sites: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    admin = profiles(sites / "admin", default="admin", gpu="a100")
    monkeypatch.setenv("ORCH_SITE_DIR", str(admin))
    assert load_profile("default").partition == "admin"
    (admin / "default.yaml").unlink()
    assert load_profile("default").path == REPO / "slurm_templates" / "default.yaml"
    assert load_profile("gpu").partition == "a100"


def test_the_user_configs_site_dir_comes_after_orch_site_dir(sites: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = profiles(sites / "mine", default="mine", laptop="none")
    write_user_config(sites, f"registry: /shared/registry\nsite_dir: {mine}\n")
    assert profile_dirs() == [mine, REPO / "slurm_templates"]
    assert load_profile("default").partition == "mine"
    admin = profiles(sites / "admin", default="admin")
    monkeypatch.setenv("ORCH_SITE_DIR", str(admin))
    assert profile_dirs() == [admin, mine, REPO / "slurm_templates"]
    assert load_profile("default").partition == "admin" and load_profile("laptop").partition == "none"


def test_an_unknown_profile_lists_the_known_ones_of_every_folder(sites: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_SITE_DIR", str(profiles(sites / "admin", gpu="a100")))
    write_user_config(sites, f"site_dir: {profiles(sites / 'mine', laptop='none', default='mine')}\n")
    (sites / "mine" / "notes.txt").write_text("not a profile\n")
    with pytest.raises(InputError, match=r"no site profile 'cluster'; known: default, gpu, laptop$") as error:
        load_profile("cluster")
    assert error.value.where == f"{sites / 'admin'}, {sites / 'mine'}, {REPO / 'slurm_templates'}"


@pytest.mark.parametrize("text, expected", [
    ("site_dir: [/a, /b]\n", r"config.yaml: site_dir: expected a path string$"),
    ("site_dir: 3\n", r"config.yaml: site_dir: expected a path string$"),
    ("sitedir: /a\n", r"config.yaml: sitedir: unknown key \(known: registry, site_dir\); did you mean site_dir\?$"),
    ("- site_dir\n", r"config.yaml: expected a mapping with the keys registry, site_dir$"),
    ("site_dir: [\n", r"config.yaml: cannot read user config: "),
], ids=["list", "number", "misspelt key", "not a mapping", "not YAML"])
def test_a_bad_user_config_is_a_clear_error(text: str, expected: str, sites: Path) -> None:
    write_user_config(sites, text)
    with pytest.raises(InputError, match=expected):
        load_profile("default")


@pytest.mark.parametrize("source", ["ORCH_SITE_DIR", "site_dir"])
def test_a_site_folder_that_does_not_exist_is_an_error_not_a_fallback(source: str, sites: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    missing = sites / "typo"
    if source == "ORCH_SITE_DIR":
        monkeypatch.setenv("ORCH_SITE_DIR", str(missing))
        where = "ORCH_SITE_DIR"
    else:
        where = f"{write_user_config(sites, f'site_dir: {missing}')}: site_dir"
    with pytest.raises(InputError) as error:
        load_profile("default")
    assert (error.value.where, error.value.message) == (
        where, f"{missing} is not a folder; expected a folder of site profiles")
