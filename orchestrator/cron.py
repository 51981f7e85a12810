"""``orch cron print|install``: the crontab line that runs ``orch sync --quiet``, installed idempotently.

The line carries the PATH of the shell that installs it (cron's own PATH rarely
holds the SLURM commands of a module system) and ends with a marker naming the
registry, so installing again replaces it instead of adding a second tick.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from orchestrator.errors import OrchError

TIMEOUT_S = 30


def marker(root: Path) -> str:
    return f"# orch sync {root}"


def line(root: Path, every_min: int = 5) -> str:
    """The crontab line for a sync every ``every_min`` minutes of the registry at ``root``."""
    command = [sys.executable, "-m", "orchestrator", "--registry", str(root), "sync", "--quiet"]
    path = os.environ.get("PATH", "/usr/bin:/bin")
    return (f"*/{every_min} * * * * env PATH={shlex.quote(path)} {shlex.join(command)} {marker(root)}")


def _crontab(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["crontab", *argv], input=stdin, capture_output=True, text=True, timeout=TIMEOUT_S,
                              check=False)
    except FileNotFoundError:
        raise OrchError("crontab: command not found; install cron, or run the printed line another way") from None
    except subprocess.TimeoutExpired:
        raise OrchError(f"crontab {' '.join(argv)}: no answer within {TIMEOUT_S} s") from None


def install(root: Path, every_min: int = 5) -> bool:
    """Put the line into the user's crontab, replacing an older one for the same registry; False when
    it was already there as is."""
    current = _crontab(["-l"])
    existing = current.stdout.splitlines() if current.returncode == 0 else []  # "no crontab for user": empty
    wanted = line(root, every_min)
    if wanted in existing:
        return False
    kept = [entry for entry in existing if not entry.endswith(marker(root))]
    result = _crontab(["-"], "\n".join([*kept, wanted]) + "\n")
    if result.returncode != 0:
        raise OrchError(f"crontab failed: {result.stderr.strip()}")
    return True
