"""The config model on the shipped configs and on edge cases of names, versions and planes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest

from orchestrator.core.config import config_hash, parent_path
from orchestrator.core.config_file import load_config, parse_time_min
from orchestrator.core.errors import InputError
from tests.helpers import REPO, V4, v4_config


def test_every_key_of_the_users_v4_file_is_read(workdir: Path, data_root: Path) -> None:
    config = load_config(V4)
    assert (config.name, config.version, config.label) == ("production_training_prod_main", 4,
                                                           "production_training_prod_main_v4")
    assert config.planes == ("X",)
    assert config.model.hp_max_evals == 25 and config.model.epochs == 80 and config.model.batch_size == 128
    assert config.model.early_stopping.patience == 10 and config.model.early_stopping.restore_best_weights
    assert config.dataset.balance_data and config.dataset.balance_method == "undersample"
    assert config.dataset.label.describe() == "metadata[:, 2]"
    assert config.data_directories == (data_root / "es", data_root / "cc")  # ${ORCH_DATA_ROOT} expanded
    assert config.output_folder == REPO / "training_output" / "mt_identifier" / "prod_main_v4"
    assert set(config.model.space.names) == {"n_conv_layers", "n_dense_layers", "n_filters", "kernel_size",
                                             "n_dense_units", "learning_rate", "decay_rate", "dropout_rate",
                                             "batch_size"}
    assert config.training_notes["version"] == "v4"
    assert all(config.save_outputs.values())


def test_all_shipped_configs_load_and_chain(workdir: Path) -> None:
    folder = REPO / "json" / "mt_identifier"
    labels = {p.name: load_config(p) for p in folder.glob("*.json")}
    v1 = labels["production_training_prod_main.json"]
    assert v1.version == 1 and parent_path(v1) is None
    assert parent_path(labels["production_training_prod_main_v2.json"]) == folder / "production_training_prod_main.json"
    assert parent_path(labels["production_training_prod_main_v3.json"]) == folder / "production_training_prod_main.json"
    assert parent_path(labels["production_training_prod_main_v4.json"]) == folder / "production_training_prod_main_v2.json"


def test_declared_version_must_agree_with_the_file_name(write_config: Callable[..., Path]) -> None:
    cfg = v4_config()
    cfg["version"] = 5
    with pytest.raises(InputError, match="version: declares version 5 but the file name says v4"):
        load_config(write_config(cfg, name="cfg_v4.json"))


def test_declared_name_and_version_win_over_an_unversioned_file_name(write_config: Callable[..., Path]) -> None:
    cfg = v4_config()
    cfg.update(name="mt", version=7)
    config = load_config(write_config(cfg, name="config.json"))
    assert config.label == "mt_v7"


def test_relative_data_directory_resolves_against_the_repository_root(write_config: Callable[..., Path],
                                                                      workdir: Path, monkeypatch) -> None:
    cfg = v4_config()
    cfg["data_directories"] = ["data/es", "~/cc"]
    monkeypatch.chdir(workdir)  # the working directory must not matter
    monkeypatch.setenv("HOME", "/home/someone")
    config = load_config(write_config(cfg))
    assert config.data_directories == (workdir / "repo" / "data" / "es", Path("/home/someone/cc"))


def test_plane_placeholder_and_plane_list(write_config: Callable[..., Path]) -> None:
    cfg = v4_config()
    cfg["plane"] = ["U", "V", "X"]
    cfg["dataset_parameters"]["batch_pattern"] = "prodmarley_*_plane{plane}.npz"
    config = load_config(write_config(cfg))
    assert config.planes == ("U", "V", "X")
    assert config.dataset.pattern_for("V") == "prodmarley_*_planeV.npz"
    assert config.frozen("V")["plane"] == "V"


def test_frozen_config_is_absolute_and_reloads_identically(write_config: Callable[..., Path],
                                                           tmp_path: Path) -> None:
    config = load_config(write_config())
    frozen = config.frozen()
    assert all(Path(d).is_absolute() for d in frozen["data_directories"])
    copy = tmp_path / "config.json"
    copy.write_text(json.dumps(frozen))
    again = load_config(copy)
    assert again.label == config.label and again.data_directories == config.data_directories
    assert config_hash(again.frozen()) == config_hash(frozen)


@pytest.mark.parametrize("text, minutes", [("30", 30), ("12:00:00", 720), ("2-00:00:00", 2880), ("1-12", 2160),
                                           ("00:00:30", 1), ("90:30", 91)])
def test_slurm_time_forms(text: str, minutes: int) -> None:
    assert parse_time_min(text) == minutes
