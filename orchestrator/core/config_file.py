"""Reading a config file into the config model (``orchestrator.core.config``): a regular file of at
most 16 MB, strict JSON (no duplicate keys), every key known or refused with a "did you mean", every
value checked, paths resolved against the config's repository, the name and version from the file
name. One error names the file and the key."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Collection
from pathlib import Path
from typing import Any

from orchestrator.core.config import (
    ALGORITHMS,
    DEFAULT_HEARTBEAT_LIMIT_S,
    DEFAULT_STARTUP_TRIALS,
    MODEL_NAMES,
    NAME_RE,
    NORMALIZATIONS,
    OBJECTIVES,
    PLANES,
    SAVE_KEYS,
    SLURM_TOKEN_RE,
    TASKS,
    Config,
    DatasetParams,
    EarlyStopping,
    LabelSpec,
    ModelParams,
    Pruning,
    Recovery,
    Resources,
    config_hash,
    repository_root,
    resolve_path,
)
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
from orchestrator.core.space import parse_space
from orchestrator.core.trials import MONITORS, Objective

_VERSION_SUFFIX = re.compile(r"(?P<name>.+)_v(?P<version>[0-9]+)")
_TIME = re.compile(r"(?:(?P<d>\d+)-)?(?P<a>\d+)(?::(?P<b>\d+))?(?::(?P<c>\d+))?")
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


