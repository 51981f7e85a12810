"""Leftovers of interrupted writes, removed by ``orch sync``.

Only names that orch's own writers make are touched: the temporary files of atomic writes, claims
and other files created once (``files.temp_path``: ``.<stem>.<8 hex>.tmp<suffix>``), data caches whose build was cut off (``.cache.<pid>.<6 hex>/``)
and entries that were being assembled in ``.staging/`` (``<job_id>.<8 hex>/``). Nothing is removed
before it has been left untouched for ``AGE_S`` (a write in progress is never swept), and no
symbolic link is followed or removed. The root, ``.staging/`` and the job directories are sticky, so
only what this user may remove (its own, or all in a folder it owns) is looked at; another member's
is left to that member's sync.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

AGE_S = 86400.0  # a day: far longer than any write takes

TEMP_FILE = re.compile(r"\..*\.[0-9a-f]{8}\.tmp(?:\.[A-Za-z0-9]+)?")  # files.temp_path's names
CACHE_BUILD = re.compile(r"\.cache\.[0-9]+\.[0-9a-f]{6}")  # jobs.data.prepare's folder of its own
STAGED = re.compile(r".+\.[0-9a-f]{8}")  # registry.create_entry's entries in .staging/


@dataclass
class Swept:
    """What a sweep removed, and what it could not."""

    removed: int = 0
    problems: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)  # another member's, in a sticky folder: for that member's sync


def sweep_root(root: Path, cutoff: float, swept: Swept) -> None:
    """The registry's own leftovers: temporary files in ``root`` and ``index/``, and staged entries in
    ``.staging/``, last touched before ``cutoff`` (a time stamp)."""
    for entry in _entries(root, swept) + _entries(root / "index", swept):
        if entry.is_file(follow_symlinks=False) and TEMP_FILE.fullmatch(entry.name) and _own(entry, root):
            _remove_file(entry, cutoff, swept)
    for entry in _entries(root / ".staging", swept):  # a staged entry is sticky: only its maker empties it
        if entry.is_dir(follow_symlinks=False) and STAGED.fullmatch(entry.name) and _mine(entry):
            _remove_dir(entry, cutoff, swept)


def _mine(entry: os.DirEntry[str]) -> bool:
    """Whether this process owns ``entry`` (or is root)."""
    try:
        return os.geteuid() in (entry.stat(follow_symlinks=False).st_uid, 0)
    except FileNotFoundError:
        return False


def _own(entry: os.DirEntry[str], folder: Path) -> bool:
    """Whether this process may remove ``entry`` of ``folder``: the folder is not sticky, or this
    process owns the entry or the folder (or is root)."""
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        return False
    return not info.st_mode & stat.S_ISVTX or os.geteuid() == info.st_uid or _mine(entry)


def sweep_tree(directory: Path, cutoff: float, swept: Swept) -> None:
    """The leftovers anywhere under ``directory`` (a job's), last touched before ``cutoff``."""
    for entry in _entries(directory, swept):
        if entry.is_dir(follow_symlinks=False):
            if not CACHE_BUILD.fullmatch(entry.name):
                sweep_tree(Path(entry.path), cutoff, swept)
            elif _own(entry, directory):
                _remove_dir(entry, cutoff, swept)
            else:
                swept.left.append(entry.path)
        elif entry.is_file(follow_symlinks=False) and TEMP_FILE.fullmatch(entry.name):
            if _own(entry, directory):
                _remove_file(entry, cutoff, swept)
            else:
                swept.left.append(entry.path)


def _entries(directory: Path, swept: Swept) -> list[os.DirEntry[str]]:
    try:
        return list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        swept.problems.append(f"cannot sweep {directory}: {exc.strerror}")
        return []


def _remove_file(entry: os.DirEntry[str], cutoff: float, swept: Swept) -> None:
    try:
        if entry.stat(follow_symlinks=False).st_mtime < cutoff:
            os.unlink(entry.path)
            swept.removed += 1
    except FileNotFoundError:
        pass  # gone meanwhile
    except OSError as exc:
        swept.problems.append(f"cannot remove {entry.path}: {exc.strerror}")


def _remove_dir(entry: os.DirEntry[str], cutoff: float, swept: Swept) -> None:
    """Remove a leftover folder when neither it nor anything directly in it was touched since ``cutoff``."""
    try:
        touched = [entry.stat(follow_symlinks=False).st_mtime,
                   *(e.stat(follow_symlinks=False).st_mtime for e in os.scandir(entry.path))]
        if max(touched) < cutoff:
            shutil.rmtree(entry.path)  # never follows a symbolic link (shutil.rmtree.avoids_symlink_attacks)
            swept.removed += 1
    except FileNotFoundError:
        pass  # gone meanwhile
    except OSError as exc:
        swept.problems.append(f"cannot remove {entry.path}: {exc.strerror}")
