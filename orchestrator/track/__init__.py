"""Keeping the registry true after submission: sync and recovery, status, cancel, cron. Imports
``core``, ``scheduler`` and ``launch`` (a recovery is a new submission)."""
