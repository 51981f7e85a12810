"""Version lineage and ``orch diff``: what changed between two configs, key by key.

The output has the shape of the users' "Configuration Changes" notes::

    hp_max_evals: 20 → 25
    + space_options.dropout_rate: [0.1, 0.2, 0.3, 0.4]

Keys of ``model_parameters`` and ``dataset_parameters`` are shown without that
prefix, as the users write them. Lists are compared whole. Free-text blocks
(``training_notes``, ``metadata``) and the identity keys (``name``, ``version``,
``parent``) are not changes to the run and are left out.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from orchestrator.core.config import Config, parent_path
from orchestrator.core.config_file import load_config
from orchestrator.core.errors import InputError

NOT_RUN_KEYS = frozenset({"training_notes", "metadata", "name", "version", "parent"})
UNPREFIXED = ("model_parameters.", "dataset_parameters.")


def flatten(data: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted.path, value)`` for every leaf; lists are leaves."""
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from flatten(value, path + ".")
        else:
            yield path, value


def _show_path(path: str) -> str:
    for prefix in UNPREFIXED:
        if path.startswith(prefix):
            return path[len(prefix):]
    return path


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The changed, added (``+``) and removed (``-``) keys from ``old`` to ``new``."""
    before = {p: v for p, v in flatten(old) if p.split(".")[0] not in NOT_RUN_KEYS}
    after = {p: v for p, v in flatten(new) if p.split(".")[0] not in NOT_RUN_KEYS}
    lines = []
    for path in list(before) + [p for p in after if p not in before]:
        if path not in after:
            lines.append(f"- {_show_path(path)}: {_show(before[path])}")
        elif path not in before:
            lines.append(f"+ {_show_path(path)}: {_show(after[path])}")
        elif before[path] != after[path]:
            lines.append(f"{_show_path(path)}: {_show(before[path])} → {_show(after[path])}")
    return lines


def parent_of(config: Config) -> Config:
    """The parent config, or ``InputError`` when it has none or its file is missing."""
    path = parent_path(config)
    if path is None:
        raise InputError(str(config.path), f"{config.label} has no parent (a first version without \"parent\"); "
                                           "give two configs to diff")
    if not path.exists():
        raise InputError(str(config.path), f"parent: {path} does not exist")
    return load_config(path, resolve_paths=False)


def diff_report(old: Config, new: Config) -> list[str]:
    """Header plus the change lines, ready to print or paste into notes."""
    header = f"{old.label} → {new.label}"
    changes = diff(old.raw, new.raw)
    return [header, *(f"  {line}" for line in changes)] if changes else [header, "  (no changes to the run)"]
