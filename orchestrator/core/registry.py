"""The registry: where it lives, job IDs, job directories and how an entry is created.

The registry is plain files on a (possibly NFS) shared filesystem, every file with
exactly one writer, made and read with ``orchestrator.core.files``. The root, ``jobs/``,
``.staging/``, ``locks/``, every job directory and its ``trials/`` are sticky, so no member
can remove, rename or swap for a link another's job directory, a folder in it or the
registry's own folders. Every folder orch writes into is made with the entry (or by the first
``orch submit``), before another member could plant a name there; a job's trial folders are
refused when another member made them first (``make_dir(..., own=True)``).

Layout under the root::

    jobs/<job_id>/          one directory per job (``JobPaths``)
    .staging/               entries being assembled; renamed into jobs/ whole
    locks/                  the sync lock
    index/index.json        orch sync's summary row per job (``orchestrator.core.index``)
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import ClassVar

import yaml

from orchestrator.core.errors import InputError
from orchestrator.core.fields import did_you_mean
from orchestrator.core.files import (
    DIR_MODE,
    STICKY_DIR_MODE,
    fsync_dir,
    make_dir,
    write_text_atomic,
)

ASSEMBLING_MODE = 0o2755  # an entry being assembled: the group may read it, not yet write in it


_JOB_ID = re.compile(r"(?:[0-9]{1,12}|local-[0-9]{8}T[0-9]{6}-[0-9a-f]{6})(?:_[0-9]{1,6})?")


def is_job_id(name: object) -> bool:
    """Whether ``name`` is a SLURM ID (``123``, ``123_4``) or a local ID."""
    return isinstance(name, str) and _JOB_ID.fullmatch(name) is not None


def validate_job_id(job_id: str) -> str:
    """Return ``job_id`` if it is a job ID (``is_job_id``); raise otherwise.

    Rejecting everything else keeps IDs from ever naming a path outside the registry.
    """
    if not is_job_id(job_id):
        raise InputError(
            f"job {job_id!r}",
            "not a job ID; expected a SLURM ID like 17832069 or 17832069_2, or local-YYYYMMDDTHHMMSS-xxxxxx",
        )
    return job_id


def new_local_job_id(now: datetime | None = None) -> str:
    """A fresh job ID for the local executor: ``local-<UTC timestamp>-<6 hex>``."""
    now = now or datetime.now(timezone.utc)
    return f"local-{now.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"


def user_config_path() -> Path:
    """The per-user orch config file (``$XDG_CONFIG_HOME/orch/config.yaml``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "orch" / "config.yaml"


USER_CONFIG_KEYS = ("registry", "site_dir")


def user_config() -> dict[str, str]:
    """The settings of the user config (``user_config_path``), each a path string: ``registry`` (the
    registry root) and ``site_dir`` (a folder of site profiles, ``orchestrator.launch.site``). A key that
    is null or empty is left out, and so is every key when there is no such file. An unreadable file,
    another key or a value that is not a string is an error naming the file and the key."""
    path = user_config_path()
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(str(path), f"cannot read user config: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(str(path), f"expected a mapping with the keys {', '.join(USER_CONFIG_KEYS)}")
    for key, value in data.items():
        if key not in USER_CONFIG_KEYS:
            raise InputError(f"{path}: {key}", f"unknown key (known: {', '.join(USER_CONFIG_KEYS)})"
                                               + did_you_mean(str(key), USER_CONFIG_KEYS))
        if value is not None and not isinstance(value, str):
            raise InputError(f"{path}: {key}", "expected a path string")
    return {key: value for key, value in data.items() if value}


def resolve_root(cli_value: str | None = None) -> Path:
    """The registry root: ``--registry``, else ``ORCH_REGISTRY``, else the user config's
    ``registry`` key, else ``./registry``. Returned absolute; not created here."""
    value = cli_value or os.environ.get("ORCH_REGISTRY") or user_config().get("registry")
    return Path(os.path.expanduser(value or "registry")).resolve()


def existing_root(root: Path, new_ok: bool = False) -> Path:
    """``root`` (from ``resolve_root``) if it is an existing directory, so that a mistyped ``--registry``
    is an error instead of a new, empty registry. With ``new_ok`` (``orch submit``, and ``orch validate``
    which previews it) it may also be one not made yet, inside an existing directory: the submission
    makes it."""
    if root.is_dir() or (new_ok and not root.exists() and root.parent.is_dir()):
        return root
    if root.exists():
        problem = "is not a directory"
    else:
        problem = "does not exist" + (", nor does its parent directory" if new_ok else "")
    raise InputError(str(root), f"registry {problem}; expected an existing registry (from --registry, ORCH_REGISTRY,"
                                f" {user_config_path()} or ./registry) or, for orch submit, a new one inside an "
                                "existing directory")


@dataclass(frozen=True)
class JobPaths:
    """Every path of one job directory. The only place these names are spelled."""

    root: Path
    job_id: str
    LOG_NAME: ClassVar[str] = "job.out"  # also in the batch script's --output pattern (%j, %A_%a for the ID)

    def __post_init__(self) -> None:
        validate_job_id(self.job_id)

    @classmethod
    def from_dir(cls, job_dir: Path) -> JobPaths:
        """The paths of the job whose directory is ``job_dir`` (``<root>/jobs/<job_id>``)."""
        return cls(job_dir.parent.parent, job_dir.name)

    @property
    def dir(self) -> Path:
        return self.root / "jobs" / self.job_id

    @property
    def submission(self) -> Path:
        """Written once by ``orch submit``: what was asked, estimated and by whom."""
        return self.dir / "submission.json"

    @property
    def config(self) -> Path:
        """The frozen config as submitted (written by ``orch submit``)."""
        return self.dir / "config.json"

    @property
    def script(self) -> Path:
        """The exact batch script that was submitted."""
        return self.dir / "job.sbatch"

    @property
    def log(self) -> Path:
        """The job's stdout and stderr (opened by the scheduler or the local executor)."""
        return self.dir / self.LOG_NAME

    @property
    def trials(self) -> Path:
        """One JSON line per finished trial, appended by the job."""
        return self.dir / "trials.jsonl"

    @property
    def run(self) -> Path:
        """The job's own record of its run: host, start, status, reason (written by the job)."""
        return self.dir / "run.json"

    @property
    def data_record(self) -> Path:
        """What the job loaded: files, samples per split, class balance, bad files (written by the job)."""
        return self.dir / "data.json"

    @property
    def result(self) -> Path:
        """The final result: best trial, test metrics, artifact paths (written by the job)."""
        return self.dir / "result.json"

    @property
    def cache(self) -> Path:
        """The prepared data as memory-mappable .npy files, shared by all trials of a search (in the
        search's entry); built in another folder and renamed into place (``split_file``, ``cache_record``)."""
        return self.dir / "cache"

    @staticmethod
    def split_file(cache: Path, split: str, array: str) -> Path:
        """One array (images, labels, metadata) of one split (train, val, test) in a data cache."""
        return cache / f"{split}_{array}.npy"

    @staticmethod
    def cache_record(cache: Path) -> Path:
        """The data record of a complete cache, written last: a cache without it is not one."""
        return cache / "ready.json"

    @property
    def claims(self) -> Path:
        """The search's trial claims, ``<trial>.<generation>`` and ``final.<generation>`` (in the
        search's entry; ``orchestrator.core.claims``)."""
        return self.dir / "claims"

    @property
    def trials_dir(self) -> Path:
        """The folders of the job's trials (sticky: no member can swap one of them for a link)."""
        return self.dir / "trials"

    def trial_dir(self, number: int) -> Path:
        """Scratch of one trial process: its request, result, history and model."""
        return self.trials_dir / f"{number:04d}"

    def trial_result(self, number: int) -> Path:
        """What a trial process found (status, metrics, epochs), read by its job into the trial's record."""
        return self.trial_dir(number) / "result.json"

    def trial_history(self, number: int) -> Path:
        """A trial's per-epoch training history (Keras's)."""
        return self.trial_dir(number) / "history.json"

    def trial_model(self, number: int) -> Path:
        """A trial's trained model (restored best weights); kept for the best trial only."""
        return self.trial_dir(number) / "model.keras"

    @property
    def final_record(self) -> Path:
        """What the final evaluation process found (test metrics, ROC points), read and removed by the job."""
        return self.dir / "final.json"

    @property
    def final_scores(self) -> Path:
        """The test split's labels and scores of the final evaluation, until the job makes them an artifact."""
        return self.dir / "final_scores.npz"

    def artifact_name(self, what: str) -> str:
        """The file name of one of the job's artifacts: ``<job_id>_<what>``, so a job finds its artifacts
        and they find their job, wherever they are (``artifacts_dir``)."""
        return f"{self.job_id}_{what}"

    def request(self, number: int) -> Path:
        """A trial's point, written before its process starts; other workers read it as pending."""
        return self.trial_dir(number) / "request.json"

    def progress(self, number: int) -> Path:
        """One JSON line per epoch of a trial (its validation metrics), appended by its trial process."""
        return self.trial_dir(number) / "progress.jsonl"

    def pulse(self, number: int) -> Path:
        """An empty file the trial process touches every few seconds while its batches train (watched
        for thrashing, ``jobs.thrash``)."""
        return self.trial_dir(number) / "pulse"

    @property
    def scheduler(self) -> Path:
        """Scheduler state as ``orch sync`` last saw it, and its recovery decision (written by sync only,
        run by any member: in a folder of its own, where one member's sync may replace another's record)."""
        return self.dir / "sync" / "scheduler.json"

    @property
    def children(self) -> Path:
        """One marker file per attempt that continues this job (``orchestrator.core.attempts``)."""
        return self.dir / "children"

    @property
    def next_attempt(self) -> Path:
        """Who is making (or made) the attempt continuing this job: created once (``attempts.reserve_next``)."""
        return self.dir / "next_attempt.json"

    @property
    def local_state(self) -> Path:
        """The local executor's record of a local job: pid, start, end, exit code."""
        return self.dir / "local_state.json"

    @property
    def artifacts(self) -> Path:
        return self.dir / "artifacts"

    def folders(self) -> dict[Path, int]:
        """The folders every entry is made with, and their modes: all that orch writes into below the
        job directory except the trials' own folders (made by the job in the sticky ``trials/``) and
        the data cache (renamed into place whole)."""
        return {self.trials_dir: STICKY_DIR_MODE, self.artifacts: DIR_MODE, self.claims: DIR_MODE,
                self.children: DIR_MODE, self.scheduler.parent: DIR_MODE}


def artifacts_dir(paths: JobPaths, output_folder: str | Path | None) -> Path:
    """Where a job's artifacts go: ``<output_folder>/<job_id>`` when the config names an output
    folder, else the job's ``artifacts/``."""
    return Path(output_folder) / paths.job_id if output_folder else paths.artifacts


def jobs_dir(root: Path) -> Path:
    """The folder holding one directory per job."""
    return root / "jobs"


def registry_folders(root: Path) -> dict[Path, int]:
    """The registry's own folders (made by the first ``orch submit``) and their modes: the ones that
    only their owner may rename are sticky; ``index/`` is not, since every member's sync replaces the
    index in it."""
    return {jobs_dir(root): STICKY_DIR_MODE, root / ".staging": STICKY_DIR_MODE, root / "locks": STICKY_DIR_MODE,
            root / "index": DIR_MODE}


def create_entry(root: Path, job_id: str, files: dict[str, str]) -> JobPaths:
    """Create the job directory for ``job_id`` holding ``files`` (name → text) and ``JobPaths.folders``,
    all at once.

    The entry is assembled in ``.staging/`` and the directory is renamed into
    ``jobs/``, so an entry is either complete or absent.
    """
    paths = JobPaths(root, job_id)
    if not os.path.lexists(root):  # a root that exists keeps the mode its owner gave it
        make_dir(root, STICKY_DIR_MODE)
    for folder, mode in registry_folders(root).items():
        make_dir(folder, mode)
    stage = root / ".staging" / f"{job_id}.{secrets.token_hex(4)}"
    make_dir(stage, ASSEMBLING_MODE)  # no member may make a name in it before its folders are ours
    try:
        for folder, mode in paths.folders().items():
            make_dir(stage / folder.relative_to(paths.dir), mode)
        for name, text in files.items():
            write_text_atomic(stage / name, text)
        if paths.dir.exists():
            raise InputError(f"job {job_id}", f"a registry entry already exists at {paths.dir}")
        make_dir(stage, STICKY_DIR_MODE)  # whole now: the group may write in it
        os.rename(stage, paths.dir)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    fsync_dir(paths.dir.parent)
    return paths
