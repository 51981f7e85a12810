"""The config model: a versioned JSON config as typed, frozen objects (``orchestrator.core.config_file``
reads a file into them), its hash, where its paths and its parent are.

Every key has an effect or is rejected. The users' own format (every key of
their v4 file) is accepted as is; ``task``, ``name``, ``version``, ``parent``,
``resources`` and a few dataset/model keys are additions documented in
``docs/config.md``. Free-text blocks (``training_notes``, ``metadata``) are kept
verbatim and shown, never interpreted.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.core.errors import InputError
from orchestrator.core.space import SearchSpace
from orchestrator.core.trials import Objective

PLANES = ("U", "V", "X")
TASKS = {"mt_identifier": ("metadata", 2)}  # task → default label (array, column): is_main_track
MODEL_NAMES = ("hyperopt_simple_cnn",)
OBJECTIVES = ("val_loss", "val_accuracy", "val_auc", "val_f1")
ALGORITHMS = {"tpe": "hyperopt TPE", "optuna_tpe": "Optuna TPE (multivariate)", "random": "random search"}
DEFAULT_STARTUP_TRIALS = {"tpe": 20, "optuna_tpe": 10}  # each library's own default
DEFAULT_HEARTBEAT_LIMIT_S = 300.0
NORMALIZATIONS = ("none", "max", "standardize")
SAVE_KEYS = ("save_model", "save_history", "save_predictions", "save_confusion_matrix",
             "save_roc_curve", "save_metrics")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # validators use fullmatch: "$" passes "x\n"
SLURM_TOKEN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.,:+-]{0,63}")
_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")


@dataclass(frozen=True)
class LabelSpec:
    """Where the binary label lives in each NPZ file: an array and, for 2-D arrays, a column."""

    array: str
    column: int | None

    def describe(self) -> str:
        return self.array if self.column is None else f"{self.array}[:, {self.column}]"


@dataclass(frozen=True)
class DatasetParams:
    train_fraction: float
    val_fraction: float
    test_fraction: float
    shuffle_data: bool
    balance_data: bool
    balance_method: str
    max_samples: int | None
    random_seed: int
    batch_pattern: str
    label: LabelSpec
    normalization: str
    bad_files: str

    def pattern_for(self, plane: str) -> str:
        """The file glob for one plane (``{plane}`` substituted)."""
        return self.batch_pattern.replace("{plane}", plane)


@dataclass(frozen=True)
class EarlyStopping:
    monitor: str
    patience: int
    restore_best_weights: bool
    min_delta: float


@dataclass(frozen=True)
class Pruning:
    """When a trial stops before its last epoch because its curve is worse than the others' (``jobs.pruning``)."""

    method: str  # "none", "median" or "halving"
    min_epochs: int  # no decision before this epoch (halving: its first rung)
    warmup_trials: int  # no decision before this many trials of the search have finished
    reduction_factor: int  # halving: rungs at min_epochs × factor^k, the top 1/factor go on


@dataclass(frozen=True)
class ModelParams:
    input_shape: tuple[int, int, int]
    hp_max_evals: int
    space: SearchSpace
    epochs: int
    batch_size: int
    early_stopping: EarlyStopping | None
    objective: Objective
    max_consecutive_failures: int
    algorithm: str  # the proposer: a key of ALGORITHMS
    startup_trials: int  # random start-up trials of a TPE, at most hp_max_evals (random search: all of them)
    pruning: Pruning

    def describe_proposer(self) -> str:
        """The proposer in words, e.g. ``Optuna TPE (multivariate), 10 of 25 trials random start-up``."""
        if self.algorithm == "random":
            return f"{ALGORITHMS['random']}, all {self.hp_max_evals} trials random"
        return f"{ALGORITHMS[self.algorithm]}, {self.startup_trials} of {self.hp_max_evals} trials random start-up"


@dataclass(frozen=True)
class Resources:
    """What the job asks the scheduler for; ``None`` means the site profile's default
    (or, for memory, the estimate)."""

    mem_gb: float | None
    timeout_min: int | None
    cpus_per_task: int | None
    gpus: int
    partition: str | None
    account: str | None
    qos: str | None
    constraint: str | None
    site: str
    max_parallel: int | None
    workers: int  # SLURM array tasks (local processes) sharing one search per plane
    heartbeat_limit_s: float  # a trial claim untouched this long, whose worker is gone, is taken over


@dataclass(frozen=True)
class Recovery:
    """Per-config overrides of the site's recovery policy; ``None`` means the site profile's value."""

    max_attempts: int | None
    memory_factor: float | None


@dataclass(frozen=True)
class Config:
    """One versioned config, validated. ``raw`` is the JSON as written."""

    path: Path
    raw: dict[str, Any]
    name: str
    version: int
    parent: str | None
    task: str
    model_name: str
    output_folder: Path | None
    data_directories: tuple[Path, ...]
    planes: tuple[str, ...]
    dataset: DatasetParams
    model: ModelParams
    save_outputs: dict[str, bool]
    resources: Resources
    recovery: Recovery
    training_notes: dict[str, Any]
    metadata: dict[str, Any]

    @property
    def label(self) -> str:
        """``name_vN``: how the config is called in job names and tables."""
        return f"{self.name}_v{self.version}"

    def frozen(self, plane: str | None = None) -> dict[str, Any]:
        """The config as a job runs it: name/version/parent declared, paths absolute,
        and (for one task of an array) a single plane."""
        data = dict(self.raw)
        data.update(name=self.name, version=self.version,
                    data_directories=[str(d) for d in self.data_directories])
        if self.output_folder is not None:
            data["output_folder"] = str(self.output_folder)
        parent = parent_path(self)
        if parent is not None:
            data["parent"] = str(parent)
        if plane is not None:
            data["plane"] = plane
        return data


def require_proposer(config: Config) -> None:
    """Refuse a proposer whose library this interpreter lacks (Optuna is an optional extra),
    without importing it."""
    if config.model.algorithm == "optuna_tpe" and importlib.util.find_spec("optuna") is None:
        raise InputError(str(config.path), 'model_parameters.algorithm: "optuna_tpe" needs the optuna package, '
                         f"which {sys.executable} lacks; install orch with its train extra "
                         "(pip install 'orch[train]') or choose \"tpe\"")


def config_hash(data: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a config (sorted keys, no whitespace)."""
    return hashlib.sha256(canonical_json(data).encode("utf-8")).hexdigest()


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def repository_root(path: Path) -> Path | None:
    """The nearest ancestor of ``path`` holding ``.git``, or None."""
    for parent in path.parents:
        if (parent / ".git").exists():
            return parent
    return None


def resolve_path(text: str, root: Path | None, source: str, key: str) -> Path:
    """Expand ``~`` and ``${VAR}``; make a relative path absolute against the repository root."""

    def var(match: re.Match[str]) -> str:
        name = match[1] or match[2]
        if name not in os.environ:
            raise InputError(source, f"{key}: {json.dumps(text)} uses ${{{name}}}, which is not set in the "
                                     "environment")
        return os.environ[name]

    expanded = os.path.expanduser(_VAR.sub(var, text))
    if os.path.isabs(expanded):
        return Path(os.path.normpath(expanded))
    if root is None:
        raise InputError(source, f"{key}: relative path {json.dumps(text)} in a config outside any git repository; "
                                 "relative paths are resolved against the config's repository root (never the "
                                 "node's working directory). Use an absolute path or ${VAR}")
    return Path(os.path.normpath(root / expanded))


def parent_path(config: Config) -> Path | None:
    """The parent config's file: declared (relative to this file's folder), else the previous
    version beside it when that file exists; None for a first version without a declared parent."""
    if config.parent is not None:
        return Path(os.path.normpath(config.path.parent / config.parent))
    previous = config.version - 1
    if previous < 1:
        return None
    stem = config.name if previous == 1 else f"{config.name}_v{previous}"
    candidates = [config.path.parent / f"{stem}.json"]
    if previous == 1:
        candidates.append(config.path.parent / f"{config.name}_v1.json")
    return next((c for c in candidates if c.exists()), None)

