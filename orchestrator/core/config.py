"""The config model: a versioned JSON config read into typed, frozen objects.

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
import stat
import sys
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.core.errors import InputError
from orchestrator.core.fields import (
    Section,
    boolean,
    int_at_least,
    is_int,
    is_number,
    one_of,
    optional,
    string,
)
from orchestrator.core.space import SearchSpace, parse_space
from orchestrator.core.trials import MONITORS, Objective

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
_VERSION_SUFFIX = re.compile(r"(?P<name>.+)_v(?P<version>[0-9]+)")
_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_TIME = re.compile(r"(?:(?P<d>\d+)-)?(?P<a>\d+)(?::(?P<b>\d+))?(?::(?P<c>\d+))?")


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


MAX_CONFIG_BYTES = 16 * 2**20


def read_regular(path: Path) -> bytes:
    """The bytes of a config file, following links (a config may be one) but only to a regular file
    of at most ``MAX_CONFIG_BYTES``: a FIFO or a device planted there is an ``OSError``, never waited on."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError("not a regular file")
        data = handle.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise OSError(f"larger than {MAX_CONFIG_BYTES // 2**20} MB")
    return data


def read_json_file(path: Path) -> Any:
    """Parse a JSON file; malformed JSON and duplicate keys are errors with line and column."""
    try:
        text = read_regular(path).decode("utf-8")
    except FileNotFoundError:
        raise InputError(str(path), "config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), f"cannot read config: {exc}") from None

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise InputError(str(path), f"{key}: key appears twice in one object; JSON keeps only the last")
            seen[key] = value
        return seen

    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise InputError(str(path), f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None


SUBMITTED_CONFIGS = "ORCH_CONFIG_SHA256"  # a job's processes: the hashes its batch script names


def submitted_configs() -> list[str] | None:
    """The hashes of the configs this job was submitted with, from ``SUBMITTED_CONFIGS`` (None when
    its batch script named none)."""
    value = os.environ.get(SUBMITTED_CONFIGS)
    return value.split(",") if value else None


def load_config(path: str | Path, resolve_paths: bool = True, submitted: Collection[str] | None = None) -> Config:
    """Read and validate one config file (structure only; the data is checked by ``scan``).

    With ``resolve_paths`` false, ``data_directories`` and ``output_folder`` stay as
    written (no ``${VAR}`` needed): enough to compare configs, not to run them. With
    ``submitted`` (the ``config_hash`` of each config a submission froze, as its batch script
    names them), a file that is none of them is refused: a job runs only what was validated."""
    path = Path(path).resolve()
    src = str(path)
    data = read_json_file(path)
    if submitted is not None and config_hash(data) not in submitted:
        raise InputError(src, "is not the config this job was submitted with (its SHA-256 differs): it was "
                              "changed in the registry after submission, and the job does not run it")
    top = Section(data, "", src)

    name, version = _name_and_version(top, path)
    parent = top.take("parent", optional(string), "a config file name (relative to this file) or null", None)
    task = top.take("task", one_of(*TASKS), f"one of {', '.join(TASKS)}", "mt_identifier")
    model_name = top.take("model_name", one_of(*MODEL_NAMES), f"one of {', '.join(MODEL_NAMES)}")
    output_folder = top.take("output_folder", optional(string), "a directory path or null", None)
    dirs = top.take("data_directories", lambda v: isinstance(v, list) and v and all(map(string, v)),
                    "a non-empty list of directory paths")
    planes = _planes(top)
    dataset = _dataset(top.section("dataset_parameters"), task, planes)
    model = _model(top.section("model_parameters"))
    save = top.section("save_outputs", default={})
    save_outputs = {k: save.take(k, boolean, "true or false", True) for k in SAVE_KEYS}
    save.finish()
    resources = _resources(top.section("resources", default={}))
    rec = top.section("recovery", default={})
    recovery = Recovery(
        max_attempts=rec.take("max_attempts", optional(int_at_least(1)), "an integer ≥ 1 or null", None),
        memory_factor=rec.take("memory_factor", optional(lambda v: is_number(v) and v > 1), "a number > 1 or null",
                               None))
    rec.finish()
    notes = top.take("training_notes", lambda v: isinstance(v, dict), "an object (free text, kept as is)", {})
    meta = top.take("metadata", lambda v: isinstance(v, dict), "an object (free text, kept as is)", {})
    top.finish()

    root = repository_root(path)
    resolve = (lambda text, key: resolve_path(text, root, src, key)) if resolve_paths else (  # noqa: E731
        lambda text, key: Path(text))
    return Config(
        path=path, raw=top.data, name=name, version=version, parent=parent, task=task, model_name=model_name,
        output_folder=None if output_folder is None else resolve(output_folder, "output_folder"),
        data_directories=tuple(resolve(d, f"data_directories[{i}]") for i, d in enumerate(dirs)),
        planes=planes, dataset=dataset, model=model, save_outputs=save_outputs, resources=resources,
        recovery=recovery, training_notes=notes, metadata=meta,
    )


def _name_and_version(top: Section, path: Path) -> tuple[str, int]:
    match = _VERSION_SUFFIX.fullmatch(path.stem)
    inferred_name, inferred_version = (match["name"], int(match["version"])) if match else (path.stem, 1)
    name = top.take("name", string, "a config name", inferred_name)
    version = top.take("version", int_at_least(1), "an integer ≥ 1", inferred_version)
    if not NAME_RE.fullmatch(name):
        top.fail(f"{json.dumps(name)} is not a usable config name; use letters, digits, '.', '_' or '-' "
                 "(at most 100, starting with a letter or digit)", "name" if "name" in top.data else None)
    if match and "version" in top.data and version != inferred_version:
        top.fail(f"declares version {version} but the file name says v{inferred_version}", "version")
    return name, version


def _planes(top: Section) -> tuple[str, ...]:
    value = top.take("plane", lambda v: v in PLANES or (isinstance(v, list) and v and all(p in PLANES for p in v)),
                     "one of \"U\", \"V\", \"X\" or a non-empty list of them")
    planes = tuple(value) if isinstance(value, list) else (value,)
    if len(set(planes)) != len(planes):
        top.fail(f"plane {value} lists a plane twice", "plane")
    return planes


def _dataset(sec: Section, task: str, planes: tuple[str, ...]) -> DatasetParams:
    fraction = lambda v: is_number(v) and 0 < v < 1  # noqa: E731
    fractions = [sec.take(k, fraction, "a number between 0 and 1") for k in
                 ("train_fraction", "val_fraction", "test_fraction")]
    if abs(sum(fractions) - 1.0) > 1e-6:
        sec.fail(f"train_fraction + val_fraction + test_fraction = {sum(fractions):g}; they must sum to 1")
    pattern = sec.take("batch_pattern", lambda v: string(v) and v.endswith(".npz") and "/" not in v,
                       "a file-name glob ending in .npz, e.g. \"*_plane{plane}.npz\"")
    _check_pattern(sec, pattern, planes)
    label = _label(sec.section("label", default={}), task)
    params = DatasetParams(
        *fractions,
        shuffle_data=sec.take("shuffle_data", boolean, "true or false", True),
        balance_data=sec.take("balance_data", boolean, "true or false", False),
        balance_method=sec.take("balance_method", one_of("undersample", "oversample"),
                                "\"undersample\" or \"oversample\"", "undersample"),
        max_samples=sec.take("max_samples", optional(int_at_least(1)), "an integer ≥ 1 or null", None),
        random_seed=sec.take("random_seed", int_at_least(0), "an integer ≥ 0", 42),
        batch_pattern=pattern, label=label,
        normalization=sec.take("normalization", one_of(*NORMALIZATIONS), f"one of {', '.join(NORMALIZATIONS)}",
                               "none"),
        bad_files=sec.take("bad_files", one_of("fail", "skip"), "\"fail\" or \"skip\"", "fail"),
    )
    sec.finish()
    return params


def _check_pattern(sec: Section, pattern: str, planes: tuple[str, ...]) -> None:
    if re.search(r"\{(?!plane\})[^}]*\}", pattern):
        sec.fail(f"{json.dumps(pattern)}: only the placeholder {{plane}} is allowed", "batch_pattern")
    if "{plane}" in pattern:
        return
    if len(planes) > 1:
        sec.fail(f"{json.dumps(pattern)} names no {{plane}} but plane lists {len(planes)} planes; every task "
                 "would read the same files. Write the plane as {plane}", "batch_pattern")
    literal = set(re.findall(r"plane([UVX])", pattern))
    if literal and literal != {planes[0]}:
        sec.fail(f"{json.dumps(pattern)} selects plane {', '.join(sorted(literal))} but plane is {planes[0]}",
                 "batch_pattern")


def _label(sec: Section, task: str) -> LabelSpec:
    default_array, default_column = TASKS[task]
    array = sec.take("array", string, "the name of an array in each NPZ file", default_array)
    column = sec.take("column", optional(int_at_least(0)), "a column index ≥ 0, or null for a 1-D label array",
                      default_column if array == default_array else None)
    sec.finish()
    return LabelSpec(array, column)


def _model(sec: Section) -> ModelParams:
    shape = sec.take("input_shape", lambda v: isinstance(v, list) and len(v) == 3 and all(is_int(x) and x >= 1
                                                                                         for x in v),
                     "[height, width, channels] as three integers ≥ 1")
    if shape[2] != 1:
        sec.fail(f"{shape}: the NPZ images are (N, height, width), so channels must be 1",
                 "input_shape")
    space = parse_space(sec.data.get("space_options", {}), sec.source, sec.key_path("space_options"))
    sec.known.append("space_options")
    early = None
    if sec.data.get("early_stopping") is None:  # absent or null: no early stopping
        sec.known.append("early_stopping")
    else:
        es = sec.section("early_stopping")
        early = EarlyStopping(
            monitor=es.take("monitor", one_of(*MONITORS), f"one of {', '.join(MONITORS)}", "val_loss"),
            patience=es.take("patience", int_at_least(0), "an integer ≥ 0", 10),
            restore_best_weights=es.take("restore_best_weights", boolean, "true or false", True),
            min_delta=es.take("min_delta", lambda v: is_number(v) and v >= 0, "a number ≥ 0", 0.0),
        )
        es.finish()
    evals = sec.take("hp_max_evals", int_at_least(1), "an integer ≥ 1")
    algorithm = sec.take("algorithm", one_of(*ALGORITHMS), ", ".join(f'"{a}"' for a in ALGORITHMS), "tpe")
    if algorithm == "random":
        if "startup_trials" in sec.data:
            sec.fail("only the TPE proposers have random start-up trials; random search draws every trial at "
                     "random", "startup_trials")
        startup = evals
    else:
        startup = min(sec.take("startup_trials", int_at_least(0), "an integer ≥ 0",
                               DEFAULT_STARTUP_TRIALS[algorithm]), evals)
    params = ModelParams(
        input_shape=tuple(shape), hp_max_evals=evals,
        space=space, epochs=sec.take("epochs", int_at_least(1), "an integer ≥ 1"),
        batch_size=sec.take("batch_size", int_at_least(1), "an integer ≥ 1", 128), early_stopping=early,
        objective=Objective(sec.take("objective", one_of(*OBJECTIVES), f"one of {', '.join(OBJECTIVES)}", "val_loss")),
        max_consecutive_failures=sec.take("max_consecutive_failures", int_at_least(1), "an integer ≥ 1", 3),
        algorithm=algorithm, startup_trials=startup,
        pruning=_pruning(sec.section("pruning", default={})),
    )
    sec.finish()
    return params


def _pruning(sec: Section) -> Pruning:
    method = sec.take("method", one_of("none", "median", "halving"), "\"none\", \"median\" or \"halving\"", "none")
    if "reduction_factor" in sec.data and method != "halving":
        sec.fail(f"reduction_factor is for method \"halving\"; method is {json.dumps(method)}", "reduction_factor")
    rule = Pruning(method=method,
                   min_epochs=sec.take("min_epochs", int_at_least(1), "an integer ≥ 1", 5),
                   warmup_trials=sec.take("warmup_trials", int_at_least(0), "an integer ≥ 0", 5),
                   reduction_factor=sec.take("reduction_factor", int_at_least(2), "an integer ≥ 2", 3))
    sec.finish()
    return rule


def _resources(sec: Section) -> Resources:
    token = lambda v: isinstance(v, str) and bool(SLURM_TOKEN_RE.fullmatch(v))  # noqa: E731
    token_words = "a SLURM name (letters, digits, _ . , : + -) or null"
    time = sec.take("time", optional(lambda v: isinstance(v, str) and _TIME.fullmatch(v) is not None),
                    "a SLURM time limit such as \"12:00:00\" or \"2-00:00:00\", or null", None)
    res = Resources(
        mem_gb=sec.take("mem_gb", optional(lambda v: is_number(v) and v > 0), "a number of GB > 0, or null to "
                        "request the estimate", None),
        timeout_min=None if time is None else parse_time_min(time),
        cpus_per_task=sec.take("cpus_per_task", optional(int_at_least(1)), "an integer ≥ 1 or null", None),
        gpus=sec.take("gpus", int_at_least(0), "an integer ≥ 0", 0),
        partition=sec.take("partition", optional(token), token_words, None),
        account=sec.take("account", optional(token), token_words, None),
        qos=sec.take("qos", optional(token), token_words, None),
        constraint=sec.take("constraint", optional(token), token_words, None),
        site=sec.take("site", lambda v: isinstance(v, str) and NAME_RE.fullmatch(v) is not None,
                      "the name of a site profile", "default"),
        max_parallel=sec.take("max_parallel", optional(int_at_least(1)), "an integer ≥ 1 or null", None),
        workers=sec.take("workers", int_at_least(1), "an integer ≥ 1", 1),
        heartbeat_limit_s=sec.take("heartbeat_limit_s", lambda v: is_number(v) and v >= 2, "a number of seconds ≥ 2",
                                   DEFAULT_HEARTBEAT_LIMIT_S),
    )
    sec.finish()
    return res


def parse_time_min(text: str) -> int:
    """Minutes in a SLURM time string (``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM[:SS]``), rounded up."""
    m = _TIME.fullmatch(text)
    if not m:
        raise ValueError(f"not a SLURM time: {text!r}")
    parts = [int(x) if x else 0 for x in (m["a"], m["b"], m["c"])]
    given = [x is not None for x in (m["a"], m["b"], m["c"])]
    if m["d"]:  # D-HH[:MM[:SS]]
        seconds = int(m["d"]) * 86400 + parts[0] * 3600 + parts[1] * 60 + parts[2]
    elif given[2]:  # HH:MM:SS
        seconds = parts[0] * 3600 + parts[1] * 60 + parts[2]
    else:  # MM[:SS]
        seconds = parts[0] * 60 + parts[1]
    return max(1, -(-seconds // 60))


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

