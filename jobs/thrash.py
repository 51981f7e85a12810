"""A trial thrashing against its memory limit, told apart from one that is only slow.

A memory request a little below a trial's need does not always end in an OOM kill: the kernel
reclaims the trial's file-backed pages (TensorFlow's libraries, the memory-mapped data) again and
again, and the trial crawls until its time limit (measured on the test cluster: a 0.35 GB limit
under a trial needing about 0.48 GB hit the limit 264,000 times in a minute, and no OOM kill came).
A trial is taken as thrashing when, over a whole window of ``WINDOW_S``, its memory cgroup hit its
limit at least ``MIN_HITS`` times while the trial finished no training batch: neither its progress
file (a line per epoch) nor its pulse file (touched as batches finish, every few seconds) changed.
A healthy trial near its limit can hit it that often too (page cache reclaimed: 64,000 hits in 20 s
of a trial that completed, on the test cluster), but it keeps finishing batches; the users' epochs
take many minutes, so an epoch is too coarse a sign of life.

The limit hits are counted where the limit is, whatever the node offers: in the process's cgroup
and those above it, each that has a memory limit of its own (SLURM's is on the job's cgroup, above
the task's), ``memory.failcnt`` (cgroup v1) or the ``max`` line of ``memory.events`` (v2), the
largest taken. A cgroup without a limit (a slice shared with other jobs) is never read, so a
neighbour's thrashing does not count.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

WINDOW_S = 60.0
MIN_HITS = 10_000  # per window; a healthy trial may hit it as often, but it finishes batches meanwhile
CGROUP_ROOT = Path("/sys/fs/cgroup")


def _read_int(path: Path, key: str | None = None) -> int | None:
    """The number in ``path`` (or on its line ``key N``); None when it cannot be read."""
    try:
        text = path.read_text()
    except OSError:
        return None
    if key is None:
        return int(text.strip()) if text.strip().isdigit() else None
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key and value.strip().isdigit():
            return int(value)
    return None


def limit_hits(membership: Path = Path("/proc/self/cgroup"), root: Path = CGROUP_ROOT) -> Callable[[], int] | None:
    """A reader of how often the memory limits over this process (its ``membership``: its cgroup and
    those above it, up to the mount's root, which a container's namespace makes its own cgroup) were hit
    so far; None when none of them has a limit (nothing to watch). Its trial processes are in the same
    cgroup."""
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        return None
    counters: list[tuple[Path, str | None]] = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):  # v1: its own hierarchy
            base, limit, name, key = root / "memory", "memory.limit_in_bytes", "memory.failcnt", None
        elif controllers == "":  # v2: the unified hierarchy
            base, limit, name, key = root, "memory.max", "memory.events", "max"
        else:
            continue
        folder = base / path.lstrip("/")
        while folder == base or base in folder.parents:
            if _limited(folder / limit):
                counters.append((folder / name, key))
            folder = folder.parent
    if not counters:
        return None
    return lambda: max(_read_int(path, key) or 0 for path, key in counters)


def _limited(path: Path) -> bool:
    """Whether a cgroup's limit file sets a limit (v2 writes ``max`` for none, v1 a number near 2⁶³)."""
    value = _read_int(path)
    return value is not None and value < 2**62


@dataclass
class Watch:
    """Samples of one trial's limit hits and progress; ``check`` says when it thrashes."""

    hits: Callable[[], int]
    signs: tuple[Path, ...]  # files that change while the trial makes progress
    window_s: float = WINDOW_S
    min_hits: int = MIN_HITS
    samples: deque[tuple[float, int, tuple[tuple[int, int], ...]]] = field(default_factory=deque)  # time, hits, signs

    def check(self, now: float) -> str | None:
        """Take a sample at ``now`` (seconds, monotonic); why the trial thrashes, or None."""
        done = tuple(_size_and_time(path) for path in self.signs)
        self.samples.append((now, self.hits(), done))
        while len(self.samples) > 1 and now - self.samples[1][0] >= self.window_s:
            self.samples.popleft()  # keep one sample at least a window old
        since, hits_then, done_then = self.samples[0]
        hits = self.samples[-1][1] - hits_then
        if now - since >= self.window_s and hits >= self.min_hits and done == done_then:
            return (f"thrashing at its memory limit: the limit was hit {hits:,} times in {now - since:.0f} s "
                    "with no training batch finished")
        return None


def _size_and_time(path: Path) -> tuple[int, int]:
    """A file's size and modification time (zeros while it does not exist)."""
    try:
        info = os.stat(path, follow_symlinks=False)
    except OSError:
        return 0, 0
    return info.st_size, info.st_mtime_ns
