"""Median pruning for real: Keras trials on tiny data, per-epoch progress in the registry, and what the
record, orch status and the report say of a pruned trial."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest

from orchestrator.core.attempts import search_records
from orchestrator.core.records import read_json_lines
from orchestrator.core.registry import JobPaths
from tests.helpers import Orch, submitted

pytestmark = pytest.mark.slow


def test_a_median_pruned_search_records_status_and_report_say_so(small_config: Callable[..., Path], workdir: Path,
                                                                 orch: Orch) -> None:
    root = workdir / "registry"
    config = small_config("prune", evals=5, epochs=6, model={
        "pruning": {"method": "median", "min_epochs": 1, "warmup_trials": 1},
        "space_options": {"n_filters": [4, 8], "learning_rate": {"choice": [0.01, 1e-7]}}})  # 1e-7 barely learns
    search = submitted(orch, "submit", "--local", "--wait", str(config))
    paths = JobPaths(root, search)
    records = search_records(paths)
    assert len(records) == 5 and json.loads(paths.run.read_text())["status"] == "completed"
    pruned = [r for r in records if r["status"] == "pruned"]
    assert pruned, [(r["trial"], r["status"], r["epochs_run"]) for r in records]
    for r in pruned:
        assert r["epochs_run"] < 6 and "worse than the median" in r["reason"]
        progress = list(read_json_lines(paths.progress(r["trial"])))
        assert [p["epoch"] for p in progress] == list(range(1, r["epochs_run"] + 1))
        assert progress[-1]["best_loss"] == min(p["val_loss"] for p in progress)
    assert json.loads(paths.result.read_text())["best_trial"] not in {r["trial"] for r in pruned}

    code, out, _ = orch("status", search)
    assert f"· {len(pruned)} pruned" in out
    code, out, err = orch("report", search)
    assert code == 0, err
    markdown = Path(out.splitlines()[1]).read_text()
    assert f"{len(pruned)} of 5 trials pruned, saving up to" in markdown
    assert f"| {pruned[0]['trial'] + 1} | {search} | pruned |" in markdown
