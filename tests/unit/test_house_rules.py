"""The house's rules, read off the source: who may import whom (docs/ARCHITECTURE.md), where the job's
environment is read and byte multiples are written, and how long a module or a function may grow."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from orchestrator.core.index import SCHEDULERS
from orchestrator.scheduler.backend import named
from tests.helpers import REPO

WINGS = ("core", "scheduler", "launch", "track", "present")  # each may import only the wings before it
SOURCES = sorted([*(REPO / "orchestrator").rglob("*.py"), *(REPO / "jobs").rglob("*.py")])


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return names


def wing(path: Path) -> str:
    return path.relative_to(REPO / "orchestrator").parts[0].removesuffix(".py")


def label(path: Path) -> str:
    return str(path.relative_to(REPO))


@pytest.mark.parametrize("path", [p for p in SOURCES if p.is_relative_to(REPO / "jobs")], ids=label)
def test_a_job_uses_only_the_core_of_the_login_side(path: Path) -> None:
    outside = {m for m in imported(path) if m.startswith("orchestrator") and not m.startswith("orchestrator.core")}
    assert outside == set()


@pytest.mark.parametrize("path", [p for p in SOURCES if p.is_relative_to(REPO / "orchestrator")], ids=label)
def test_a_wing_imports_only_the_wings_before_it_and_never_a_job(path: Path) -> None:
    mine = wing(path)
    allowed = WINGS[:WINGS.index(mine) + 1] if mine in WINGS else WINGS  # cli.py and the package's own files: any
    used = {m.split(".")[1] for m in imported(path) if m.startswith("orchestrator.") and m.split(".")[1] in WINGS}
    assert used <= set(allowed), f"{label(path)} ({mine}) imports {sorted(used - set(allowed))}"
    assert not {m for m in imported(path) if m == "jobs" or m.startswith("jobs.")}


def test_the_job_environment_is_read_in_one_module() -> None:
    readers = [label(p) for p in SOURCES if re.search(r"""environ[^\n]*["']SLURM_|get\(["']SLURM_""", p.read_text())]
    assert readers == ["orchestrator/core/jobenv.py"]


def test_byte_multiples_are_written_in_the_units_module_only() -> None:
    writers = [label(p) for p in SOURCES if re.search(r"\b1e9\b|\b1e6\b|2 ?\*\* ?30|1024 ?\*\* ?3", p.read_text())]
    assert writers == ["orchestrator/core/units.py"]


def test_the_backends_are_the_schedulers_a_submission_may_name() -> None:
    assert [named(name).name for name in SCHEDULERS] == list(SCHEDULERS)


@pytest.mark.parametrize("path", SOURCES, ids=label)
def test_modules_and_functions_stay_short(path: Path) -> None:
    text = path.read_text()
    assert len(text.splitlines()) <= 350
    long = [f"{node.name}: {node.end_lineno - node.lineno + 1} lines" for node in ast.walk(ast.parse(text))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60
            and node.name != "_parser"]  # the argparse table
    assert long == []
