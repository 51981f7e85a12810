"""``orch overview``: one self-contained HTML page of every search in the registry.

A search is one row: its workers (a search of several) and its attempts together, in the state of
its newest attempt. The rows come from the index rows ``orch status`` reads (``status.job_rows``,
or the rows a sync tick has just written): what a row lacks (trials over every attempt, the best
trial, test F1/AUC, wall time) is the ``summary`` the index keeps for a settled search, read from
the search's files (trial lines skimmed) only while it has not settled. Each job of the attempt
chain links to its report where one exists; ``orch overview`` first makes the missing reports of
the searches that have ended, ``orch sync``'s refresh makes none.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, TypeVar
from urllib.parse import quote

from orchestrator.core import index
from orchestrator.core.clock import now
from orchestrator.core.errors import InputError, OrchError
from orchestrator.core.files import make_dir, write_text_atomic
from orchestrator.core.records import NONSENSE, report_skipped
from orchestrator.core.registry import JobPaths
from orchestrator.present import report
from orchestrator.present.page import Cell, Filters, Link, Page, Table, fmt, to_html
from orchestrator.track.status import duration, job_rows
from orchestrator.track.sync import Report

PAGE = Path("index") / "overview.html"  # beside the index: the folder every member's sync replaces files in
COLUMNS = ["config", "version", "plane", "state", "trials", "objective", "best", "test F1", "test AUC",
           "asked GB", "estimated GB", "used GB", "wall time", "submitted", "attempts (report links)"]
MISSING = "-Infinity"  # the sort key of a number a row lacks: before every number
T = TypeVar("T")


def page_path(root: Path) -> Path:
    """Where the registry's overview page is: ``<root>/index/overview.html``."""
    return root / PAGE


def searches(root: Path, rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per search among ``rows`` (job ID → index row of every job, workers included), newest
    submitted first, with the path of each attempt's report where it exists."""
    parents = {r["parent_job_id"] for r in rows.values() if r.get("parent_job_id")}
    newest = [r for r in rows.values() if r["job_id"] not in parents]  # no attempt continues it
    workers: dict[str, list[dict[str, Any]]] = {}  # search ID → each of its workers' newest attempt
    for r in newest:
        if r.get("search_id"):
            workers.setdefault(r["search_id"], []).append(r)
    found = []
    for row in (r for r in newest if not r.get("search_id")):
        chain = _chain(row, rows)
        last = workers.get(row["job_id"]) or [row]
        summary = row.get("summary") or (None if row["state"] == index.UNREADABLE else _tried(
            row["job_id"], lambda: index.search_summary(JobPaths(root, row["job_id"])))) or {}
        best = summary.get("best") or {}
        found.append({
            "search_id": chain[0], "job_id": row["job_id"], "attempts": chain, "label": row.get("label"),
            "name": row.get("name"), "version": row.get("version"), "plane": row.get("plane"),
            "state": row["state"], "settled": row.get("settled", False),
            "submitted_at": rows[chain[0]].get("submitted_at"), "workers": row.get("workers"),
            "trials_done": summary.get("trials_done"), "trials_total": summary.get("trials_total"),
            "objective_name": best.get("objective_name"), "objective": best.get("objective"),
            "test_f1": summary.get("test_f1"), "test_auc": summary.get("test_auc"),
            "mem_gb": _largest(last, "mem_gb"), "estimated_peak_gb": _largest(last, "estimated_peak_gb"),
            "measured_peak_gb": _largest(last, "measured_peak_gb"), "wall_s": summary.get("wall_s"),
            "reports": {job: _report(root, job) for job in chain},
        })
    return sorted(found, key=lambda s: (s["submitted_at"] or "", s["search_id"]), reverse=True)


def _chain(row: dict[str, Any], rows: dict[str, dict[str, Any]]) -> list[str]:
    """The job IDs of the attempts ending in ``row``, oldest first."""
    chain = [row["job_id"]]
    while (parent := rows[chain[-1]].get("parent_job_id")) in rows and parent not in chain:
        chain.append(parent)
    return chain[::-1]


def _largest(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return max(values) if values else None


def _report(root: Path, job_id: str) -> Path | None:
    """The HTML report of ``job_id`` where ``orch report`` wrote it (``report.report_paths``), if it did."""
    path = _tried(job_id, lambda: report.report_paths(root, job_id)[0])
    return path if path is not None and path.exists() else None


def _tried(job_id: str, step: Callable[[], T], doing: str = "") -> T | None:
    """``step()``, or None when the files of ``job_id`` it reads are missing or cannot be read (said once
    on stderr, after ``doing``): one bad job leaves its cells empty, not the page unmade."""
    try:
        return step()
    except FileNotFoundError:
        return None
    except OSError as exc:
        report_skipped(f"{doing}{exc.filename}: {exc.strerror}")
    except OrchError as exc:
        report_skipped(f"{doing}{exc}")
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # a record edited into nonsense
        report_skipped(f"{doing}job {job_id}: unexpected content in its records ({type(exc).__name__}: {exc})")
    return None


def make_missing_reports(root: Path, found: list[dict[str, Any]]) -> list[Path]:
    """Write the report of each search that has ended (settled) and has none yet, with ``orch report``'s
    writer (its newest attempt's: a report covers every attempt's trials); the HTML paths made."""
    made = []
    for search in found:
        job = search["job_id"]
        if search["settled"] and search["reports"][job] is None:
            path = _tried(job, lambda: report.write(root, job)[0], f"the report of {job}: ")
            if path is not None:
                search["reports"][job] = path
                made.append(path)
    return made


def render(root: Path, found: list[dict[str, Any]], page: Path) -> str:
    """The page of the searches ``found``; its links to reports are relative to ``page``'s folder."""
    doc = Page(f"orch overview: {root}")
    doc.p(f"{len(found)} searches, written {now()}; "
          "click a column header to sort, a job ID to open its report.")
    doc.add(Filters(sorted({s["state"] for s in found})))
    doc.add(Table(COLUMNS, [_cells(s, page.parent) for s in found], sortable=True,
                  row_data=[{"state": s["state"], "name": " ".join(filter(None, (s["label"], s["name"]))),
                             "submitted": s["submitted_at"] or ""} for s in found]))
    return to_html(doc)


def _cells(s: dict[str, Any], folder: Path) -> list[str | Cell]:
    """The cells of one search's row, numbers with their own sort keys, reports linked from ``folder``."""
    attempts: list[str | Link] = []
    for job in s["attempts"]:
        path = s["reports"][job]
        attempts += [" → "] if attempts else []
        attempts.append(Link(job, quote(os.path.relpath(path, folder))) if path else job)
    if s["workers"]:
        attempts.append(f" ({s['workers']['total']} workers)")
    total = s["trials_total"]
    return [s["label"] or "?", _number(s["version"], fmt(s["version"])), s["plane"] or "", s["state"],
            _number(s["trials_done"], f"{fmt(s['trials_done'])}/{fmt(total)}"), s["objective_name"] or "–",
            _number(s["objective"], fmt(s["objective"])), _number(s["test_f1"], fmt(s["test_f1"])),
            _number(s["test_auc"], fmt(s["test_auc"])), _number(s["mem_gb"], _gb(s["mem_gb"], "g")),
            _number(s["estimated_peak_gb"], _gb(s["estimated_peak_gb"], ".1f")),
            _number(s["measured_peak_gb"], _gb(s["measured_peak_gb"], ".2f")),
            _number(s["wall_s"], duration(s["wall_s"]) if s["wall_s"] else "–"),
            Cell(((s["submitted_at"] or "")[:16].replace("T", " "),), sort=s["submitted_at"] or ""),
            Cell(tuple(attempts), sort=len(s["attempts"]))]


def _number(value: float | None, text: str) -> Cell:
    """A cell showing ``text`` that sorts by ``value`` (a row without one first)."""
    return Cell((text,), sort=value if value is not None else MISSING)


def _gb(value: float | None, spec: str) -> str:
    """GB (of 1024³ bytes) as ``orch status`` shows them; – when unknown."""
    return "–" if value is None else format(value, spec)


def write(root: Path, found: list[dict[str, Any]], page: Path) -> None:
    """Write the page of ``found`` to ``page`` atomically (the registry's own: its ``index/`` folder made
    if missing)."""
    if page == page_path(root):
        make_dir(page.parent)
    write_text_atomic(page, render(root, found, page))


def refresh(root: Path, rows: dict[str, dict[str, Any]]) -> Path:
    """Rewrite the registry's page from the index rows of a sync tick (no report is made); its path."""
    write(root, searches(root, rows), page_path(root))
    return page_path(root)


def after_tick(root: Path, tick: Report) -> None:
    """After a sync tick that changed a job (or when the page is missing), rewrite the registry's page
    from the index rows of the jobs still in the registry; a page that cannot be written is a problem
    of the tick, not its failure."""
    if tick.skipped or not (tick.changed or not page_path(root).exists()):
        return
    present = set(index.job_names(root))
    try:
        page = refresh(root, {job: row for job, row in index.load(root).items() if job in present})
    except (OrchError, OSError, *NONSENSE) as exc:  # a row edited into nonsense
        tick.problems.append(f"overview page not written: {type(exc).__name__}: {exc}")
    else:
        tick.overview = str(page)


def overview(root: Path, html: Path | None = None) -> tuple[Path, list[Path]]:
    """``orch overview``: make the missing reports of ended searches, then write the page (to ``html``,
    else the registry's ``index/overview.html``); the page's path and the reports made."""
    page = html.resolve() if html is not None else page_path(root)
    if html is not None and not page.parent.is_dir():
        raise InputError("--html", f"{page}: its folder does not exist; expected a file in an existing folder")
    found = searches(root, {r["job_id"]: r for r in job_rows(root, workers=True)})
    made = make_missing_reports(root, found)
    write(root, found, page)
    return page, made
