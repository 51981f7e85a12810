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
take many minutes, so an epoch is too coarse a sign of life. The limit hits are the cgroup's own count, whatever the node offers: ``memory.failcnt``
(cgroup v1) or the ``max`` line of ``memory.events`` (v2), read for the process's cgroup and its
ancestors (the limit may be set on the job's cgroup above the task's), the largest taken.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

WINDOW_S = 60.0
MIN_HITS = 10_000  # a healthy trial near its limit reclaims page cache too, but nowhere near this often
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
    """A reader of how often the memory cgroup of this process (its ``membership``, or one above it, short
    of the root) hit its limit so far; None when it is in no such cgroup (no limit can be hit: nothing
    to watch). Its trial processes are in the same cgroup."""
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        return None
    counters: list[tuple[Path, str | None]] = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):  # v1: its own hierarchy
            base, name, key = root / "memory", "memory.failcnt", None
        elif controllers == "":  # v2: the unified hierarchy
            base, name, key = root, "memory.events", "max"
        else:
            continue
        folder = base / path.lstrip("/")
        while folder != base and base in folder.parents:
            if (folder / name).exists():
                counters.append((folder / name, key))
            folder = folder.parent
    if not counters:
        return None
    return lambda: max(_read_int(path, key) or 0 for path, key in counters)


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
