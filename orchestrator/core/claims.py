"""Claims: how the workers of one search share out its trials (and its final step) without a server.

A claim is a file ``claims/<key>.<generation>`` in the search's directory; the key is
a trial number (``0007``) or ``final``. It is created complete and at most once
(``files.create_once``: a temporary file ``link``ed to the claim's name).
The current claim of a key is its highest generation. Taking a key over (its holder
died, or released it) means creating the next generation, which only one worker can
do, so two workers never both win a key, and a decision made on generation ``g``
cannot hit a newer claim by mistake.

The holder keeps its claim alive by touching it (the heartbeat is the file's mtime),
and may rewrite it as released (a trial cut off by a signal) so that another worker
takes it at once. Claim files hold plain JSON: who (job ID, host, pid) and when.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.core.errors import OrchError
from orchestrator.core.files import create_once, make_dir, write_json_atomic
from orchestrator.core.records import read_record

FINAL = "final"
_NAME = re.compile(r"([0-9]{4,6}|final)\.([0-9]{1,6})")


def trial_key(number: int) -> str:
    """The claim key of trial ``number``."""
    return f"{number:04d}"


@dataclass(frozen=True)
class Claim:
    """One generation of the claim on one key."""

    key: str
    generation: int
    folder: Path

    @property
    def path(self) -> Path:
        return self.folder / f"{self.key}.{self.generation}"

    @property
    def trial(self) -> int | None:
        """The trial number, or None for the final step."""
        return None if self.key == FINAL else int(self.key)

    def owner(self) -> dict[str, Any]:
        """What the claim says: ``job_id``, ``host``, ``pid``, ``claimed_at``, maybe ``released_at``.
        A file that cannot be read says nothing (``{}``), which makes it look dead, never alive."""
        try:
            return read_record(self.path)
        except (OSError, OrchError):
            return {}

    def heartbeat_age_s(self) -> float:
        """Seconds since the holder last touched the claim (infinite if it is gone)."""
        try:
            return max(0.0, time.time() - self.path.lstat().st_mtime)  # a link's own time: never fresh
        except FileNotFoundError:
            return float("inf")


def current(claims_dir: Path) -> dict[str, Claim]:
    """The current (highest-generation) claim of every key claimed so far."""
    found: dict[str, Claim] = {}
    try:
        names = os.listdir(claims_dir)
    except FileNotFoundError:
        return found
    for name in names:
        match = _NAME.fullmatch(name)
        if match is None:
            continue  # temporary files and anything else
        key, generation = match[1], int(match[2])
        if key not in found or generation > found[key].generation:
            found[key] = Claim(key, generation, claims_dir)
    return found


def create(claims_dir: Path, key: str, generation: int, owner: dict[str, Any]) -> Claim | None:
    """Create generation ``generation`` of the claim on ``key``; None when another worker already did."""
    make_dir(claims_dir)
    claim = Claim(key, generation, claims_dir)
    return claim if create_once(claim.path, owner) else None


def running(claims: dict[str, Claim], recorded: set[int]) -> dict[int, dict[str, Any]]:
    """trial → the owner of its current claim (of ``current``'s), for the trials claimed, not recorded
    and not released: the trials running now (or whose worker died and is not yet known to be gone)."""
    out = {}
    for claim in claims.values():
        if claim.trial is not None and claim.trial not in recorded:
            owner = claim.owner()
            if owner.get("job_id") and not owner.get("released_at"):
                out[claim.trial] = owner
    return out


def beat(claim: Claim) -> None:
    """The holder's heartbeat: touch the claim (never what a link planted in its place points to)."""
    os.utime(claim.path, follow_symlinks=False)


def release(claim: Claim, owner: dict[str, Any], when: str) -> None:
    """The holder gives the claim up (its trial was cut off): another worker may take it at once."""
    write_json_atomic(claim.path, {**owner, "released_at": when})
