"""Every bad input gives one clear line naming the file and the key, exit 2, and writes nothing.

Each case runs the real ``orch submit --local`` on a config (and, for data cases,
real NPZ files made bad in the way the users' were). Nothing may be queued or
written to the registry.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from orchestrator.launch.synthetic import generate
from tests.helpers import poison, v4_config

Case = Callable[[dict[str, Any], Path], None]  # mutates the config dict; may change files under the data dir


def set_key(path: str, value: Any) -> Case:
    def apply(cfg: dict[str, Any], _data: Path) -> None:
        *parents, last = path.split(".")
        node = cfg
        for key in parents:
            node = node[key]
        node[last] = value
    return apply


def rename_key(path: str, new: str) -> Case:
    def apply(cfg: dict[str, Any], _data: Path) -> None:
        *parents, last = path.split(".")
        node = cfg
        for key in parents:
            node = node[key]
        node[new] = node.pop(last)
    return apply


def first_file(data: Path) -> Path:
    return sorted((data / "es").glob("*_planeX.npz"))[0]


def zero_byte(cfg: dict[str, Any], data: Path) -> None:
    first_file(data).write_bytes(b"")


def truncate(cfg: dict[str, Any], data: Path) -> None:
    path = first_file(data)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def mixed_shapes(cfg: dict[str, Any], data: Path) -> None:
    images = np.zeros((10, 128, 32), dtype=np.float32)
    meta = np.zeros((10, 13), dtype=np.float32)
    meta[:5, 2] = 1
    np.savez(data / "cc" / "odd_0000_planeX.npz", images=images, metadata=meta)


def no_images(cfg: dict[str, Any], data: Path) -> None:
    np.savez(first_file(data), pictures=np.zeros((4, 128, 16)), metadata=np.zeros((4, 13)))


def non_finite_pixels(cfg: dict[str, Any], data: Path) -> None:
    poison(first_file(data))


def constant_label(cfg: dict[str, Any], data: Path) -> None:
    for path in (data / "es").glob("*.npz"):
        path.unlink()
    for path in (data / "cc").glob("*.npz"):
        path.unlink()
    generate(data, files_per_production=2, samples_per_file=30, planes=("X",), main_fraction=1.0)


def missing_dir(cfg: dict[str, Any], data: Path) -> None:
    shutil.rmtree(data / "cc")


def relative_outside_repo(cfg: dict[str, Any], data: Path) -> None:
    cfg["data_directories"] = ["data/es"]
    cfg.pop("output_folder")
    cfg["__outside_repo__"] = True  # consumed by the test: write the config outside any git repository


CASES: list[tuple[str, Case, str]] = [
    ("unknown top-level key", rename_key("model_name", "modle_name"),
     "modle_name: unknown key; did you mean model_name?"),
    ("unknown dataset key", rename_key("dataset_parameters.balance_data", "balance_dta"),
     "dataset_parameters.balance_dta: unknown key; did you mean balance_data?"),
    ("unknown model key", rename_key("model_parameters.epochs", "epoch"),
     "model_parameters.epoch: unknown key; did you mean epochs?"),
    ("unknown search key", rename_key("model_parameters.space_options.dropout_rate", "dropout_rte"),
     "model_parameters.space_options.dropout_rte: unknown key; did you mean dropout_rate?"),
    ("unknown early-stopping key", rename_key("model_parameters.early_stopping.patience", "patiense"),
     "model_parameters.early_stopping.patiense: unknown key; did you mean patience?"),
    ("unknown save_outputs key", rename_key("save_outputs.save_model", "save_modle"),
     "save_outputs.save_modle: unknown key; did you mean save_model?"),
    ("unknown resources key", set_key("resources.memory_gb", 20),
     "resources.memory_gb: unknown key; did you mean mem_gb?"),
    ("missing required key", lambda c, d: c.pop("model_parameters"), "model_parameters: required key is missing"),
    ("random_seed not an int", set_key("dataset_parameters.random_seed", "42"),
     "dataset_parameters.random_seed: expected an integer ≥ 0, got \"42\""),
    ("epochs not an int", set_key("model_parameters.epochs", 10.5), "model_parameters.epochs: expected an integer"),
    ("boolean as string", set_key("dataset_parameters.shuffle_data", "true"),
     "dataset_parameters.shuffle_data: expected true or false"),
    ("empty choice", set_key("model_parameters.space_options.n_filters", []),
     "model_parameters.space_options.n_filters: empty choice"),
    ("lo > hi", set_key("model_parameters.space_options.dropout_rate", {"uniform": [0.4, 0.1]}),
     "model_parameters.space_options.dropout_rate: lower bound 0.4 must be below upper bound 0.1"),
    ("loguniform lo <= 0", set_key("model_parameters.space_options.learning_rate", {"loguniform": [0, 0.01]}),
     "model_parameters.space_options.learning_rate: loguniform needs lo > 0"),
    ("non-numeric range", set_key("model_parameters.space_options.learning_rate", ["fast", "slow"]),
     "model_parameters.space_options.learning_rate[0]: expected a number, got \"fast\""),
    ("float choice for an integer key", set_key("model_parameters.space_options.n_filters", [32, 64.5]),
     "model_parameters.space_options.n_filters[1]: expected an integer ≥ 1, got 64.5"),
    ("continuous range for an integer key", set_key("model_parameters.space_options.n_filters", {"uniform": [8, 64]}),
     "n_filters is an integer; use choice or quniform"),
    ("quniform rounding out of the domain", set_key("model_parameters.space_options.n_filters",
                                                     {"quniform": [1, 64, 16]}),
     "n_filters: [1, 64, 16] takes values from 0 to 64 in steps of 16; 0 is outside the domain of n_filters"),
    ("unknown proposer", set_key("model_parameters.algorithm", "optuna"),
     "model_parameters.algorithm: expected \"tpe\", \"optuna_tpe\", \"random\", got \"optuna\""),
    ("start-up trials for random search", lambda c, d: c["model_parameters"].update(algorithm="random",
                                                                                    startup_trials=5),
     "model_parameters.startup_trials: only the TPE proposers have random start-up trials; random search"),
    ("fractions not summing to 1", set_key("dataset_parameters.test_fraction", 0.25),
     "dataset_parameters: train_fraction + val_fraction + test_fraction = 1.1; they must sum to 1"),
    ("input_shape with channels", set_key("model_parameters.input_shape", [128, 16, 3]),
     "model_parameters.input_shape: [128, 16, 3]: the NPZ images are (N, height, width), so channels must be 1"),
    ("input_shape not matching data", set_key("model_parameters.input_shape", [128, 32, 1]),
     "model_parameters.input_shape: [128, 32, 1] does not match the data of plane X: 6 files 128×16"),
    ("pattern for another plane", set_key("dataset_parameters.batch_pattern", "*_planeU.npz"),
     "dataset_parameters.batch_pattern: \"*_planeU.npz\" selects plane U but plane is X"),
    ("planes list with a literal pattern", set_key("plane", ["U", "X"]),
     "dataset_parameters.batch_pattern: \"*_planeX.npz\" names no {plane} but plane lists 2 planes"),
    ("unknown plane", set_key("plane", "Y"), "plane: expected one of \"U\", \"V\", \"X\""),
    ("bad time limit", set_key("resources.time", "12h"), "resources.time: expected a SLURM time limit"),
    ("injection in a partition", set_key("resources.partition", "gpu; rm -rf ~"),
     "resources.partition: expected a SLURM name"),
    ("injection in a name", set_key("name", "v4; rm -rf ~"),
     "name: \"v4; rm -rf ~\" is not a usable config name"),
    ("command substitution in a name", set_key("name", "$(touch /tmp/orch-pwned)"),
     "is not a usable config name"),
    ("unset variable in a data dir", set_key("data_directories", ["${ORCH_NO_SUCH_VAR}/es"]),
     "data_directories[0]: \"${ORCH_NO_SUCH_VAR}/es\" uses ${ORCH_NO_SUCH_VAR}, which is not set"),
    ("missing data dir", missing_dir, "data_directories[1]: "),
    ("glob matching nothing", set_key("dataset_parameters.batch_pattern", "clusters_plane{plane}_batch*.npz"),
     "dataset_parameters.batch_pattern: 'clusters_planeX_batch*.npz' matches no file in"),
    ("0-byte file", zero_byte, "empty file (0 bytes); fix or remove it"),
    ("truncated NPZ", truncate, "not a readable NPZ: truncated or corrupt zip"),
    ("mixed image shapes", mixed_shapes, "mixed image shapes in plane X: 6 files 128×16 as input_shape says, but "
                                         "1 files 128×32"),
    ("missing images array", no_images, "no 'images' array (has: metadata, pictures)"),
    ("NaN pixels", non_finite_pixels, "_planeX.npz: 3 non-finite pixels (NaN or ±Inf) in 2 of "),
    ("constant label", constant_label, "dataset_parameters.label: metadata[:, 2] is 1 for every one of"),
    ("non-binary label", set_key("dataset_parameters.label", {"column": 12}),
     "label metadata[:, 12] is not binary: found values [2.0]"),
    ("label column out of range", set_key("dataset_parameters.label", {"column": 20}),
     "prodmarley_es_0000_planeX.npz: metadata has shape ("),
    ("relative path outside a repository", relative_outside_repo,
     "data_directories[0]: relative path \"data/es\" in a config outside any git repository"),
    ("unknown site profile", set_key("resources.site", "nosuchsite"), "no site profile 'nosuchsite'"),
]


@pytest.mark.parametrize("case, expected", [(c, e) for _, c, e in CASES], ids=[n for n, _, _ in CASES])
def test_bad_input_is_one_clear_line_and_writes_nothing(
        case: Case, expected: str, workdir: Path, data_root: Path, orch: Callable[..., tuple[int, str, str]]) -> None:
    data = workdir / "data"
    shutil.copytree(data_root, data)
    cfg = v4_config()
    cfg["data_directories"] = [str(data / "es"), str(data / "cc")]
    case(cfg, data)
    outside = cfg.pop("__outside_repo__", False)
    path = (workdir / "elsewhere" if outside else workdir / "repo" / "json") / "cfg_v4.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cfg))

    code, out, err = orch("submit", "--local", str(path))

    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("orch: error: /"), err  # names a file
    assert expected in lines[0]
    assert "Traceback" not in err
    assert not (workdir / "registry" / "jobs").exists() or not any((workdir / "registry" / "jobs").iterdir())
    assert not Path("/tmp/orch-pwned").exists()


def test_malformed_json_names_line_and_column(write_config: Callable[..., Path],
                                              orch: Callable[..., tuple[int, str, str]]) -> None:
    path = write_config(text='{\n  "model_name": "hyperopt_simple_cnn",\n  "plane": "X"\n  "epochs": 3\n}\n')
    code, _, err = orch("validate", str(path))
    assert code == 2
    assert f"{path}: malformed JSON at line 4, column 3: Expecting ',' delimiter" in err


def test_duplicate_key_is_an_error(write_config: Callable[..., Path],
                                   orch: Callable[..., tuple[int, str, str]]) -> None:
    path = write_config(text='{"plane": "X", "plane": "U"}')
    code, _, err = orch("validate", str(path))
    assert code == 2
    assert "plane: key appears twice in one object" in err


def test_debug_shows_the_traceback(write_config: Callable[..., Path], workdir: Path) -> None:
    from orchestrator.cli import main
    from orchestrator.core.errors import InputError

    path = write_config(text="{")
    with pytest.raises(InputError):
        main(["--debug", "--registry", str(workdir / "registry"), "validate", str(path)])
