"""Files of a registry shared by a group: made, written, appended and read safely.

Every write is temp file + fsync + ``os.replace`` (``write_atomic``); appends are whole lines
written with one ``write`` on an ``O_APPEND`` file, checked for a short write, a torn last line
set aside first. Every mode is set explicitly, whatever the umask. No write or chmod follows a
symbolic link at the name it writes, and readers take regular files only, never waiting on a
FIFO (``open_file``; ``orchestrator.core.records`` reads with it). A file that must be created at
most once (a claim, the reservation of a job's next attempt) is made with ``create_once``.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any, Callable

from orchestrator.core.errors import OrchError

DIR_MODE = 0o2775  # setgid: what is made inside belongs to the group too
STICKY_DIR_MODE = 0o3775  # and sticky: only an entry's owner may remove or rename it (root, jobs/, job directories)
FILE_MODE = 0o664
OWNER_FILE_MODE = 0o644  # a record the group reads but only its writer changes (in a sticky folder: or replaces)


def make_dir(path: Path, mode: int = DIR_MODE, own: bool = False) -> None:
    """Create ``path`` with ``mode`` and its missing parents with ``DIR_MODE`` (group-shareable),
    whatever the umask; no error if it exists. A symbolic link (or a file) where a directory is to be is refused, and
    the mode is set through a descriptor that does not follow links, so that a group member's link
    cannot make orch create or chmod a directory elsewhere. With ``own``, a ``path`` that another
    member made is refused too: in a sticky folder its maker could later swap it for a link."""
    missing = []
    folder = path
    while not os.path.lexists(folder):
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o700)  # private until its mode is set below: no member makes a name in it first
        except FileExistsError:
            pass  # made by another process meanwhile
    for folder in reversed(missing) if missing else [path]:
        fd = open_nofollow(folder, os.O_RDONLY | os.O_DIRECTORY, "a directory")
        try:
            if own and folder == path and os.fstat(fd).st_uid != os.geteuid():
                raise OrchError(f"{path}: made by uid {os.fstat(fd).st_uid}, not by this user (uid {os.geteuid()}); "
                                "expected a folder of this job's own (remove it to go on)")
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


def fsync_dir(path: Path) -> None:
    """fsync a directory, so that a rename or create in it is on disk."""
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


def write_atomic(path: Path, write: Callable[[Path], object], mode: int = FILE_MODE) -> None:
    """Make ``path`` by ``write(tmp)`` to a ``temp_path`` beside it, then rename that over ``path``:
    readers see the old file or the new one, never a part, and a link planted at ``path`` is
    replaced instead of written through. ``mode``, whatever the umask: ``FILE_MODE``, or
    ``OWNER_FILE_MODE`` for a record only its writer may change."""
    tmp = temp_path(path)
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            os.fchmod(fd, mode)  # whatever the umask
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_text_atomic(path: Path, text: str, mode: int = FILE_MODE) -> None:
    """Write ``text`` to ``path`` atomically (``write_atomic``)."""
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), mode)


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


def write_json_atomic(path: Path, data: Any, mode: int = FILE_MODE) -> None:
    """Atomically write ``data`` as indented, key-sorted JSON."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n", mode)


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
