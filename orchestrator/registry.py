"""Registry primitives: where the registry lives, job directories, safe writes.

The registry is plain files on a (possibly NFS) shared filesystem. Every file
has exactly one writer; every write is temp file + fsync + ``os.replace``;
appends are whole lines written with one ``write`` on an ``O_APPEND`` file.
Directories are group-shareable (setgid, g+rwx) so a group can share a registry, and
every mode is set explicitly, whatever the umask; the root, ``jobs/``, ``.staging/`` and
``locks/`` are sticky too, so no member can remove, rename or swap for a link another's job
directory or the registry's own folders. No write or chmod follows a symbolic link at the
name it writes (inside a job directory, which the group may write, a member can still
replace a subfolder). A file that must be created at most once
(a claim, the reservation of a job's next attempt) is made with ``create_once``.

Layout under the root::

    jobs/<job_id>/          one directory per job (``JobPaths``)
    .staging/               entries being assembled; renamed into jobs/ whole
    locks/                  the sync lock
    index/index.json        orch sync's summary row per job (``orchestrator.index``)
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import stat
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from orchestrator.errors import InputError, OrchError
from orchestrator.skim import skim_object

DIR_MODE = 0o2775  # setgid: what is made inside belongs to the group too
STICKY_DIR_MODE = 0o3775  # and sticky: only an entry's owner may remove or rename it (root, jobs/, .staging/, locks/)
FILE_MODE = 0o664
MAX_RECORD_BYTES = 64 * 2**20  # a JSON record file larger than this is not one orch wrote

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


def resolve_root(cli_value: str | None = None) -> Path:
    """The registry root: ``--registry``, else ``ORCH_REGISTRY``, else the user config's
    ``registry`` key, else ``./registry``. Returned absolute; not created here."""
    value = cli_value or os.environ.get("ORCH_REGISTRY")
    if not value:
        path = user_config_path()
        if path.is_file():
            value = _registry_from_user_config(path)
    return Path(os.path.expanduser(value or "registry")).resolve()


def _registry_from_user_config(path: Path) -> str | None:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(str(path), f"cannot read user config: {exc}") from None
    if not isinstance(data, dict) or set(data) - {"registry"}:
        raise InputError(str(path), "expected a mapping with the single key 'registry'")
    value = data.get("registry")
    if value is not None and not isinstance(value, str):
        raise InputError(f"{path}: registry", "expected a path string")
    return value


def make_dir(path: Path, mode: int = DIR_MODE) -> None:
    """Create ``path`` with ``mode`` and its missing parents with ``DIR_MODE`` (group-shareable),
    whatever the umask; no error if it exists. A symbolic link (or a file) where a directory is to be is refused, and
    the mode is set through a descriptor that does not follow links, so that a group member's link
    cannot make orch create or chmod a directory elsewhere."""
    missing = []
    folder = path
    while not os.path.lexists(folder):
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o775)  # less the umask; the mode is set below
        except FileExistsError:
            pass  # made by another process meanwhile
    for folder in reversed(missing) if missing else [path]:
        fd = open_nofollow(folder, os.O_RDONLY | os.O_DIRECTORY, "a directory")
        try:
            set_mode(fd, mode if folder == path else DIR_MODE)
        finally:
            os.close(fd)


def open_nofollow(path: Path, flags: int, what: str) -> int:
    """``os.open`` of a registry path, never through a symbolic link at its last component
    (``O_NOFOLLOW``) and never blocking on a FIFO planted there (``O_NONBLOCK``); a new file is
    ``FILE_MODE`` less the umask (set it with ``set_mode``). A path that is not there, or is already
    there for ``O_EXCL``, raises as ``os.open`` does; anything else is an ``OrchError`` saying
    what ``path`` was expected to be (``what``)."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK, FILE_MODE)
    except (FileNotFoundError, FileExistsError):
        raise
    except BlockingIOError:  # a lease on a regular file (an NFS delegation, an oplock): wait for it
        if not stat.S_ISREG(os.lstat(path).st_mode):
            raise OrchError(f"{path}: not a regular file; expected {what}") from None
        return os.open(path, flags | os.O_NOFOLLOW, FILE_MODE)
    except OSError as exc:
        why = "is a symbolic link" if os.path.islink(path) else exc.strerror or str(exc)
        raise OrchError(f"{path}: {why}; expected {what} (orch does not follow links in the registry)") from None


def set_mode(fd: int, mode: int) -> None:
    """Set the mode of an open file or directory; one owned by another member of the group keeps
    the mode its owner set."""
    if os.fstat(fd).st_mode & 0o7777 != mode:
        try:
            os.fchmod(fd, mode)
        except PermissionError:
            pass


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path(path: Path) -> Path:
    """A fresh, unguessable name beside ``path`` for the file that will become it, keeping its suffix
    (Keras and numpy insist on theirs): ``.<stem>.<8 hex>.tmp<suffix>`` (``orch sync`` sweeps the
    ones an interrupted write left behind)."""
    return path.parent / f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}"


def write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Make ``path`` by ``write(tmp)`` to a ``temp_path`` beside it, then rename that over ``path``:
    readers see the old file or the new one, never a part, and a link planted at ``path`` is
    replaced instead of written through."""
    tmp = temp_path(path)
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            os.fchmod(fd, FILE_MODE)  # whatever the umask
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (``write_atomic``)."""
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def create_once(path: Path, data: dict[str, Any]) -> bool:
    """Create ``path`` holding ``data`` (one JSON line) complete and at most once: False when it
    exists already. The content goes to a temporary file that is then ``link``ed to ``path``;
    ``link`` fails when the name exists (atomic on NFS too, unlike ``O_EXCL`` on old NFS or a rename)
    and never follows a link planted at ``path``."""
    tmp = temp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        os.write(fd, (json.dumps(data, sort_keys=True) + "\n").encode())
        os.fsync(fd)
        mine = os.fstat(fd).st_ino
        try:
            os.link(tmp, path)
            return True
        except OSError as exc:
            # NFS may lose the reply of a link that succeeded (a retry then says EEXIST): whether the
            # name is our file says whether it is ours (not a link count a member could raise)
            try:
                if os.lstat(path).st_ino == mine:
                    return True
            except FileNotFoundError:
                pass
            if isinstance(exc, FileExistsError):
                return False
            raise OrchError(f"{path.parent}: cannot create {path.name} ({exc.strerror}); the registry must be on "
                            "a filesystem with hard links (NFS, Lustre, GPFS and local disks have them)") from None
    finally:
        os.close(fd)
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: Path, data: Any) -> None:
    """Atomically write ``data`` as indented, key-sorted JSON."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def append_json_line(path: Path, record: dict[str, Any]) -> None:
    """Append ``record`` as one JSON line with a single ``write`` and fsync it.

    ``path`` is never written through a symbolic link and is created ``FILE_MODE`` whatever the umask.
    A last line left torn by an append cut short (disk full, a file size limit, a crash) is first kept
    in ``<name>.torn`` and ended with a newline, so that the new line is whole and readers skip only
    the torn one. An append the kernel cuts short is an ``OrchError`` naming the file.
    """
    line = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
    try:
        fd = _open_for_append(path)
        try:
            torn = _torn_tail(fd)
            if torn:
                _keep_torn(path, torn)
                line = b"\n" + line
            _write_whole(fd, path, line)
        finally:
            os.close(fd)
    except OSError as exc:
        raise OrchError(f"{path}: cannot append a line: {exc.strerror or exc}") from None


def open_file(path: Path, flags: int, what: str) -> int:
    """``open_nofollow`` for a regular file (a FIFO, device or directory there is an ``OrchError``);
    one that ``O_CREAT`` makes is ``FILE_MODE`` whatever the umask."""
    fd = open_nofollow(path, flags, what)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise OrchError(f"{path}: not a regular file; expected {what}")
    if flags & os.O_CREAT and info.st_uid == os.geteuid():
        set_mode(fd, FILE_MODE)
    return fd


def _open_for_append(path: Path) -> int:
    """An ``O_APPEND`` descriptor on ``path`` (readable, for ``_torn_tail``); created ``FILE_MODE``,
    never through a symbolic link."""
    return open_file(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, "a file orch appends to")


def _torn_tail(fd: int) -> bytes:
    """The bytes after the last newline of the open file: b"" when it is empty or ends with a newline."""
    end = os.fstat(fd).st_size
    if end == 0 or os.pread(fd, 1, end - 1) == b"\n":
        return b""
    tail = b""
    while end > 0:
        start = max(0, end - 65536)
        block = os.pread(fd, end - start, start)
        cut = block.rfind(b"\n")
        if cut >= 0:
            return block[cut + 1:] + tail
        tail, end = block + tail, start
    return tail


def _keep_torn(path: Path, torn: bytes) -> None:
    """Copy a torn last line of ``path`` to ``<name>.torn`` (a whole record that lacks only its newline
    needs no copy: ending it makes it readable)."""
    try:
        json.loads(torn)
        return
    except ValueError:
        pass
    aside = path.with_name(f"{path.name}.torn")
    fd = _open_for_append(aside)
    try:
        _write_whole(fd, aside, torn + b"\n")
    finally:
        os.close(fd)


def _write_whole(fd: int, path: Path, data: bytes) -> None:
    """One ``write`` of ``data`` and an fsync; a write the kernel cut short is an ``OrchError``."""
    written = os.write(fd, data)
    if written != len(data):
        raise OrchError(f"{path}: only {written} of {len(data)} bytes of a line were written (disk full, or over "
                        "a file size limit?); the next append sets the torn line aside")
    os.fsync(fd)


_reported: set[str] = set()


def report_skipped(problem: str) -> None:
    """Say on stderr, once per process, that a reader skipped something it cannot read and went on;
    ``problem`` names the file (or the line of one) and what was wrong."""
    if problem not in _reported:
        _reported.add(problem)
        print(f"orch: skipped {problem}", file=sys.stderr, flush=True)


def read_json(path: Path) -> Any:
    """Read one JSON file of the registry; a file that is not JSON (or not UTF-8) is an error naming it."""
    with os.fdopen(open_file(path, os.O_RDONLY, "a JSON file"), "rb") as handle:
        data = handle.read(MAX_RECORD_BYTES + 1)
    if len(data) > MAX_RECORD_BYTES:
        raise OrchError(f"{path}: larger than {MAX_RECORD_BYTES // 2**20} MB; not a record orch writes")
    try:
        return json.loads(data)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise OrchError(f"{path}: not valid JSON ({exc}); was it edited by hand or cut short?") from None


_JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "true or false",
               type(None): "null"}


def read_record(path: Path) -> dict[str, Any]:
    """Read a JSON file of the registry that holds one object (every record of a job does)."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise OrchError(f"{path}: expected a JSON object, found {_JSON_TYPES.get(type(data), 'something else')}")
    return data


def read_optional_record(path: Path) -> dict[str, Any] | None:
    """The record in ``path``; None when there is none, or when it cannot be read (reported once)."""
    try:
        return read_record(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        report_skipped(f"{path}: {exc.strerror or exc}")
    except OrchError as exc:
        report_skipped(str(exc))
    return None


def _parse_line(path: Path, number: int, line: bytes, skim_over: int | None = None) -> dict[str, Any] | None:
    """The record on line ``number`` (1-based) of a JSON-lines file; None, reported once, when it is not one.
    With ``skim_over``, a longer line is skimmed: its array and object values longer than that are left out."""
    try:
        if skim_over is not None and len(line) > skim_over:
            record: Any = skim_object(line, skim_over)
        else:
            record = json.loads(line)
    except ValueError:
        report_skipped(f"{path} line {number}: not valid JSON (a line torn by a crash or a full disk?)")
        return None
    if not isinstance(record, dict):
        report_skipped(f"{path} line {number}: expected a JSON object, found "
                       f"{_JSON_TYPES.get(type(record), 'something else')}")
        return None
    return record


def read_json_lines(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the records of a JSON-lines file. A last line not yet ended (an append in progress, or cut
    short) is left for later; a complete line that is not a JSON object is skipped and reported once."""
    return (record for _, record in numbered_json_lines(path))


def numbered_json_lines(path: Path, skim_over: int | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """``read_json_lines`` with the (1-based) line number of each record, for readers that check them;
    with ``skim_over``, the large values of long lines are left out (``orchestrator.skim``)."""
    try:
        handle = os.fdopen(open_file(path, os.O_RDONLY, "a JSON-lines file"), "rb", buffering=2**20)
    except FileNotFoundError:
        return
    except OrchError as exc:  # a link, FIFO or folder planted in its place: no records, said once
        report_skipped(str(exc))
        return
    with handle:
        for number, line in enumerate(handle, 1):
            if line.endswith(b"\n") and not line.isspace():
                record = _parse_line(path, number, line, skim_over)
                if record is not None:
                    yield number, record


class LineTails:
    """JSON-lines files read incrementally: each call parses only what was appended since the last
    (the files are append-only); a last line not yet complete is read once it is. A file replaced by
    a new one (a trial run again in the same directory) is noticed by its first bytes and read anew.
    A line that is not a JSON object is skipped and reported once."""

    HEAD = 128

    def __init__(self) -> None:
        # path → head, offset, lines read, records
        self.seen: dict[Path, tuple[bytes, int, int, list[dict[str, Any]]]] = {}

    def read(self, path: Path) -> list[dict[str, Any]]:
        """Every complete record of ``path`` so far."""
        head, offset, count, records = self.seen.get(path, (b"", 0, 0, []))
        try:
            with os.fdopen(open_file(path, os.O_RDONLY, "a JSON-lines file"), "rb") as handle:
                if handle.read(len(head)) != head:
                    head, offset, count, records = b"", 0, 0, []
                handle.seek(offset)
                data = handle.read()
        except FileNotFoundError:
            self.seen.pop(path, None)
            return []
        except OrchError as exc:  # a link or a FIFO planted in its place: what was read stands
            report_skipped(str(exc))
            return records
        end = data.rfind(b"\n") + 1
        lines = data[:end].split(b"\n")[:-1]
        parsed = (_parse_line(path, count + n, line) for n, line in enumerate(lines, 1) if line.strip())
        records = records + [r for r in parsed if r is not None]
        head = head or data[:min(end, self.HEAD)]  # read from the start: the first complete bytes
        self.seen[path] = (head, offset + end, count + len(lines), records)
        return records


@dataclass(frozen=True)
class JobPaths:
    """Every path of one job directory. The only place these names are spelled."""

    root: Path
    job_id: str

    def __post_init__(self) -> None:
        validate_job_id(self.job_id)

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
        return self.dir / "job.out"

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
        search's entry)."""
        return self.dir / "cache"

    @property
    def claims(self) -> Path:
        """The search's trial claims, ``<trial>.<generation>`` and ``final.<generation>`` (in the
        search's entry; ``orchestrator.claims``)."""
        return self.dir / "claims"

    def trial_dir(self, number: int) -> Path:
        """Scratch of one trial process: its request, result, history and model."""
        return self.dir / "trials" / f"{number:04d}"

    def request(self, number: int) -> Path:
        """A trial's point, written before its process starts; other workers read it as pending."""
        return self.trial_dir(number) / "request.json"

    def progress(self, number: int) -> Path:
        """One JSON line per epoch of a trial (its validation metrics), appended by its trial process."""
        return self.trial_dir(number) / "progress.jsonl"

    @property
    def scheduler(self) -> Path:
        """Scheduler state as ``orch sync`` last saw it, and its recovery decision (written by sync only)."""
        return self.dir / "scheduler.json"

    @property
    def children(self) -> Path:
        """One marker file per attempt that continues this job (``orchestrator.attempts``)."""
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


def artifacts_dir(paths: JobPaths, output_folder: str | Path | None) -> Path:
    """Where a job's artifacts go: ``<output_folder>/<job_id>`` when the config names an output
    folder, else the job's ``artifacts/``."""
    return Path(output_folder) / paths.job_id if output_folder else paths.artifacts


def jobs_dir(root: Path) -> Path:
    """The folder holding one directory per job."""
    return root / "jobs"


def create_entry(root: Path, job_id: str, files: dict[str, str]) -> JobPaths:
    """Create the job directory for ``job_id`` holding ``files`` (name → text), all at once.

    The files are assembled in ``.staging/`` and the directory is renamed into
    ``jobs/``, so an entry is either complete or absent.
    """
    paths = JobPaths(root, job_id)
    staging_root = root / ".staging"
    if not os.path.lexists(root):  # a root that exists keeps the mode its owner gave it
        make_dir(root, STICKY_DIR_MODE)
    make_dir(staging_root, STICKY_DIR_MODE)
    make_dir(jobs_dir(root), STICKY_DIR_MODE)
    stage = staging_root / f"{job_id}.{secrets.token_hex(4)}"
    make_dir(stage)
    try:
        for name, text in files.items():
            write_text_atomic(stage / name, text)
        if paths.dir.exists():
            raise InputError(f"job {job_id}", f"a registry entry already exists at {paths.dir}")
        os.rename(stage, paths.dir)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    _fsync_dir(paths.dir.parent)
    return paths
