"""``orch cron print|install``: the crontab line that runs ``orch sync --quiet``, installed idempotently.

The line carries the PATH of the shell that installs it (cron's own PATH rarely
holds the SLURM commands of a module system) and ends with a marker naming the
registry, so installing again replaces it instead of adding a second tick.
Cron reads an unescaped ``%`` as the end of the command, so every ``%`` is
written ``\\%``; what a crontab line cannot carry (a control character, which
could start a line of its own, or a backslash, which would turn ``\\%`` into an
end) is refused. ``install`` changes the crontab only after reading it.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from orchestrator.core.errors import InputError, OrchError

TIMEOUT_S = 30
MINUTES = range(1, 60)  # --every-min: the step of the minute field, "*/N"
NO_CRONTAB = "no crontab for "  # what `crontab -l` says (exit 1) when the user has none yet


def _escape(text: str) -> str:
    """``text`` as written in a crontab command, where cron turns an unescaped ``%`` into a newline."""
    return text.replace("%", "\\%")


def _check(what: str, text: str) -> None:
    """Refuse ``text`` (named ``what``) if a crontab line cannot carry it."""
    if "\\" in text or not text.isprintable():
        raise InputError(what, f"{text!r} cannot be written into a crontab line; expected a path without "
                               "control characters (a newline, a tab) or backslashes")


def marker(root: Path) -> str:
    """The end of the line for ``root``, as written in the crontab."""
    return _escape(f"# orch sync {root}")


def line(root: Path, every_min: int = 5) -> str:
    """The crontab line for a sync every ``every_min`` minutes of the registry at ``root``."""
    if every_min not in MINUTES:
        raise InputError("--every-min", f"{every_min}: expected a whole number of minutes from 1 to 59")
    path = os.environ.get("PATH", "/usr/bin:/bin")
    for what, text in (("registry", str(root)), ("PATH", path), ("python", sys.executable)):
        _check(what, text)
    command = [sys.executable, "-m", "orchestrator", "--registry", str(root), "sync", "--quiet"]
    return _escape(f"*/{every_min} * * * * env PATH={shlex.quote(path)} {shlex.join(command)}") + " " + marker(root)


def _crontab(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["crontab", *argv], input=stdin, capture_output=True, text=True, timeout=TIMEOUT_S,
                              check=False)
    except FileNotFoundError:
        raise OrchError("crontab: command not found; install cron, or run the printed line another way") from None
    except subprocess.TimeoutExpired:
        raise OrchError(f"crontab {' '.join(argv)}: no answer within {TIMEOUT_S} s") from None


def _current() -> list[str]:
    """The user's crontab lines; empty only when cron says there is no crontab yet. Any other failure
    is an error, so that a crontab that could not be read is never replaced by one line."""
    listed = _crontab(["-l"])
    if listed.returncode == 0:
        return listed.stdout.splitlines()
    if NO_CRONTAB in listed.stderr:
        return []
    raise OrchError(f"crontab -l failed: {listed.stderr.strip() or f'exit code {listed.returncode}'}; "
                    "the crontab was not changed")


def install(root: Path, every_min: int = 5) -> bool:
    """Put the line into the user's crontab, replacing an older one for the same registry; False when
    it was already there as is."""
    wanted = line(root, every_min)
    existing = _current()
    if wanted in existing:
        return False
    kept = [entry for entry in existing if not entry.endswith(marker(root))]
    result = _crontab(["-"], "\n".join([*kept, wanted]) + "\n")
    if result.returncode != 0:
        raise OrchError(f"crontab failed: {result.stderr.strip()}")
    return True
