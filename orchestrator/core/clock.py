"""The registry's timestamps: UTC, ISO 8601, whole seconds (``2026-12-07T16:30:08+00:00``)."""

from __future__ import annotations

from datetime import datetime, timezone


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def now() -> str:
    """This moment as the registry writes it."""
    return iso(now_utc())
