"""``orch compare``: the table the users keep by hand, one row per version (or job), from the registry.

Targets are config names (every version of the lineage), versions (``name_vN``) or job IDs. A
version's row is its newest search that has a result (or, when none finished, its newest);
a search's attempts are joined ("17832000 → 17832069").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestrator.core import attempts, index
from orchestrator.core.config_file import load_config
from orchestrator.core.errors import InputError
from orchestrator.core.records import read_json
from orchestrator.core.registry import JobPaths, is_job_id
from orchestrator.core.units import GIB
from orchestrator.present.lineage import diff
from orchestrator.present.page import fmt, markdown_table
from orchestrator.track.status import duration, job_rows, job_view

COLUMNS = ["version", "job ID(s)", "trials", "proposer", "best trial", "objective", "val acc", "test F1", "test AUC",
           "MaxRSS", "wall time", "changes from the previous row"]


def select(root: Path, targets: list[str]) -> list[dict[str, Any]]:
    """The index rows of the searches to compare, oldest version first."""
    rows = job_rows(root)
    chosen: list[dict[str, Any]] = []
    for target in targets:
        if is_job_id(target):
            found = [r for r in rows if r["job_id"] == target]
        else:
            matching = [r for r in rows if target in (r.get("name"), r.get("label")) and not r.get("children")]
            found = [_representative([r for r in matching if r["label"] == label]) for label in
                     sorted({r["label"] for r in matching}, key=lambda lab: _version(matching, lab))]
        if not found:
            raise InputError(f"orch compare {target}", "no job of that config name, version or job ID in the registry")
        chosen += found
    return chosen


def _version(rows: list[dict[str, Any]], label: str) -> int:
    return next(r["version"] for r in rows if r["label"] == label)


def _representative(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The newest search with a result, else the newest (rows are the last attempts of searches)."""
    finished = [r for r in rows if r["state"] == "COMPLETED"]
    return max(finished or rows, key=lambda r: r["submitted_at"])


def row_data(root: Path, index_row: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    view = job_view(root, index_row["job_id"])
    trials, result = view["trials"], view["result"] or {}
    best = trials["best"]
    paths = JobPaths(root, index_row["job_id"])
    config_path = paths.config
    config = read_json(config_path)
    rss = max(((read_json(m.scheduler) if m.scheduler.exists() else {}).get("max_rss_bytes") or 0
               for m in (JobPaths(root, j) for j in view["members"])), default=0)
    return {
        "version": index_row["label"], "job_ids": view["attempts"], "trials_done": trials["done"],
        "trials_pruned": trials["pruned"], "trials_total": trials["total"], "proposer": _proposer(config_path),
        "best_trial": best["trial"] + 1 if best else None,
        "objective_name": best["objective_name"] if best else None, "objective": best["objective"] if best else None,
        "val_accuracy": (best.get("metrics") or {}).get("val_accuracy") if best else None,
        "test_f1": result.get("test", {}).get("f1"), "test_auc": result.get("test", {}).get("auc"),
        "max_rss_gb": round(rss / GIB, 3) if rss else None, "wall_s": index.wall_s(attempts.search_of(paths)),
        "changes": diff(_comparable(previous), _comparable(config)) if previous is not None else [],
        "config": config,
    }


def _proposer(config_path: Path) -> str | None:
    """The proposer of a search's frozen config, None where today's rules no longer read that config."""
    try:
        return load_config(config_path, resolve_paths=False).model.describe_proposer()
    except InputError:
        return None


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in ("data_directories", "output_folder")}


def compare(root: Path, targets: list[str]) -> list[dict[str, Any]]:
    out, previous = [], None
    for index_row in select(root, targets):
        data = row_data(root, index_row, previous)
        previous = data.pop("config")
        out.append(data)
    return out


def table_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    return [[r["version"], " → ".join(r["job_ids"]), f"{r['trials_done']}/{r['trials_total']}"
             + (f" ({r['trials_pruned']} pruned)" if r.get("trials_pruned") else ""), r["proposer"] or "–",
             f"{r['best_trial']}/{r['trials_total']}" if r["best_trial"] else "–",
             f"{r['objective_name']} {r['objective']:.4f}" if r["objective"] is not None else "–",
             fmt(r["val_accuracy"]), fmt(r["test_f1"]), fmt(r["test_auc"]),
             f"{r['max_rss_gb']:.2f} GB" if r["max_rss_gb"] else "–",
             duration(r["wall_s"]) if r["wall_s"] else "–", "; ".join(r["changes"]) or "–"] for r in rows]


def to_markdown(rows: list[dict[str, Any]]) -> str:
    return markdown_table(COLUMNS, table_rows(rows)) + "\n"


def to_html(rows: list[dict[str, Any]]) -> str:
    from orchestrator.present import plots
    from orchestrator.present.page import Figure, Page, Table
    from orchestrator.present.page import to_html as render

    page = Page("orch compare")
    page.add(Table(COLUMNS, table_rows(rows), sortable=True))
    page.add(Figure("versions", "validation accuracy and test F1/AUC across the compared rows",
                    plots.metric_across_versions([r["version"] for r in rows], {
                        "val accuracy": [r["val_accuracy"] for r in rows], "test F1": [r["test_f1"] for r in rows],
                        "test AUC": [r["test_auc"] for r in rows]})))
    return render(page)


def to_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, indent=2)
