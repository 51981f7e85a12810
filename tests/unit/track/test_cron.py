"""orch cron: the crontab line, installed once."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from orchestrator.track.cron import install, line


def test_cron_install_is_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "crontab.txt"
    fake = tmp_path / "bin" / "crontab"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/bash\nif [ "$1" = "-l" ]; then [ -f {store} ] && cat {store} || '
                    f'{{ echo "no crontab for root" >&2; exit 1; }}; else cat > {store}; fi\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    root = tmp_path / "registry"
    store.write_text("0 3 * * * /usr/bin/backup\n")
    assert install(root) is True
    assert install(root) is False
    assert store.read_text().splitlines() == ["0 3 * * * /usr/bin/backup", line(root)]
    assert install(root, every_min=10) is True  # a changed line replaces the old one
    assert store.read_text().splitlines() == ["0 3 * * * /usr/bin/backup", line(root, 10)]
    assert line(root).endswith(f"sync --quiet # orch sync {root}") and "env PATH=" in line(root)
