"""The overview page: one row per search with the registry's values, escaped, fetching nothing; `orch
overview` makes the missing reports of ended searches; `orch sync` rewrites it only when a job changed."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote

import pytest

from orchestrator.cli import main
from orchestrator.core import index, slurm
from orchestrator.core.files import write_text_atomic
from orchestrator.core.registry import create_entry
from orchestrator.present import overview, report
from orchestrator.track.sync import Tick
from tests.helpers import GIB, HOSTILE, PROBE, REPO, make_registry

MEMBERS = {"100": [["100"]], "200": [["200", "201"]], "300": [["300_0"], ["300_1"]], "400": [["400"]]}  # per worker
NOW = datetime(2026, 5, 1, tzinfo=timezone.utc)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    make_registry(tmp_path / "registry")
    return tmp_path / "registry"


def record(root: Path, job_id: str, name: str) -> dict:
    path = root / "jobs" / job_id / name
    return json.loads(path.read_text()) if path.exists() else {}


def test_every_search_is_one_row_with_the_values_of_its_files(root: Path) -> None:
    found = {s["search_id"]: s for s in overview.searches(root, index.load(root))}
    assert sorted(found) == ["100", "200", "300", "400", "500"]
    assert found["500"]["state"] == "UNREADABLE"
    for search, chains in MEMBERS.items():
        row, jobs = found[search], [j for chain in chains for j in chain]
        trials = [json.loads(line) for j in jobs
                  for line in (root / "jobs" / j / "trials.jsonl").read_text().splitlines()]
        best = min(trials, key=lambda t: t["loss"])
        test = next((record(root, j, "result.json")["test"] for j in jobs if record(root, j, "result.json")), {})
        newest = [chain[-1] for chain in chains]
        assert row["job_id"] == (search if len(chains) > 1 else chains[0][-1])
        assert row["attempts"] == ([search] if len(chains) > 1 else chains[0])
        assert row["state"] == record(root, row["job_id"], "sync/scheduler.json")["state"]
        assert (row["trials_done"], row["trials_total"]) == (len(trials), record(
            root, search, "config.json")["model_parameters"]["hp_max_evals"])
        assert (row["objective_name"], row["objective"]) == (best["objective_name"], best["objective"])
        assert (row["test_f1"], row["test_auc"]) == (test.get("f1"), test.get("auc"))
        submissions = [record(root, j, "submission.json") for j in newest]
        assert row["mem_gb"] == max(s["request"]["mem_gb"] for s in submissions)
        assert row["estimated_peak_gb"] == max(s["estimate"]["peak_gb"] for s in submissions)
        used = [record(root, j, "sync/scheduler.json").get("max_rss_bytes") for j in newest]
        assert row["measured_peak_gb"] == (max(used) / GIB if any(used) else None)
        walls = [sum(record(root, j, "sync/scheduler.json").get("elapsed_s") or 0 for j in chain) for chain in chains]
        assert row["wall_s"] == (max(walls) or None)
        assert row["submitted_at"] == record(root, chains[0][0], "submission.json")["submitted_at"]
    assert found["100"]["reports"] == {"100": report.report_paths(root, "100")[0]}  # the one report made
    assert all(path is None for s in found.values() if s["search_id"] != "100" for path in s["reports"].values())


def test_a_settled_search_is_read_from_its_index_row_alone(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = index.load(root)
    assert rows["201"]["summary"]["trials_done"] == 3 and rows["400"]["summary"] is None  # cached once settled
    read = []
    monkeypatch.setattr(index, "search_summary", lambda paths: read.append(paths.job_id) or {})
    overview.searches(root, rows)
    assert read == ["400"]  # the running one only (500 cannot be read)


def test_the_page_escapes_every_name_and_fetches_nothing(root: Path, tmp_path: Path) -> None:
    page = tmp_path / "elsewhere" / "page.html"
    page.parent.mkdir()
    found = overview.searches(root, index.load(root))
    text = overview.render(root, found, page)
    assert HOSTILE not in text and "<script>alert" not in text
    assert f"<td>{html.escape(HOSTILE)}_v1</td>" in text
    assert not re.search(r"https?:|//|\bsrc=|@import|url\(", text)
    assert text.count("<tr data-state=") == len(found)
    for label, cells in {"beta_v2": ["3/3", "0.2500", "0.7000", "0.9000", "12", "9.0", "9.00", "20 min", "200 → 201"],
                         "gamma_v1": ["4/4", "0.5000", "0.7500", "3.00", "8 min", "300 (2 workers)"],
                         "alpha_v1": ["3/3", "0.3000", "0.6100", "0.8300", "5.00", "10 min"]}.items():
        line = next(r for r in text.split("<tr ") if f"<td>{label}</td>" in r)
        assert all(re.search(rf">{re.escape(html.escape(c))}</(td|a)>", line) for c in cells), (label, line)
    href = re.findall(r'<a href="([^"]+)">100</a>', text)
    assert len(href) == 1 and (page.parent / unquote(href[0])).resolve() == report.report_paths(root, "100")[0]


def fake_writer(made: list[str]):
    def write(root: Path, job_id: str) -> tuple[Path, Path]:
        made.append(job_id)
        html_path, md_path = report.report_paths(root, job_id)
        html_path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(html_path, f"report of {job_id}")
        return html_path, md_path
    return write


def test_orch_overview_makes_the_missing_reports_of_ended_searches(
        root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    made: list[str] = []
    monkeypatch.setattr(report, "write", fake_writer(made))
    capsys.readouterr()
    assert main(["--registry", str(root), "overview"]) == 0
    out, err = capsys.readouterr()
    assert out == f"{root / 'index' / 'overview.html'}\n"
    assert made == ["300", "201"]  # not 100 (it has one), 200 (continued), 400 (running), 500 (unreadable)
    assert "made 2 missing reports" in err
    text = (root / "index" / "overview.html").read_text()
    for job in ("100", "201", "300"):
        assert f'<a href="{os.path.relpath(report.report_paths(root, job)[0], root / "index")}">{job}</a>' in text
    assert main(["--registry", str(root), "overview"]) == 0 and made == ["300", "201"]  # made once


def test_orch_overview_writes_elsewhere_or_says_why_not(root: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "write", fake_writer([]))
    capsys.readouterr()
    assert main(["--registry", str(root), "overview", "--html", str(tmp_path / "o.html")]) == 0
    assert capsys.readouterr().out == f"{tmp_path / 'o.html'}\n" and (tmp_path / "o.html").exists()
    assert main(["--registry", str(root), "overview", "--html", str(tmp_path / "no" / "o.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'no' / 'o.html'}: its folder does not exist" in err


def test_orch_overview_leaves_matplotlib_out_when_no_report_is_missing(root: Path) -> None:
    for job in ("201", "300"):
        fake_writer([])(root, job)
    result = subprocess.run([sys.executable, "-c", PROBE, "--registry", str(root), "overview"], capture_output=True,
                            text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"code": 0, "loaded": []}, result.stderr


def test_sync_rewrites_the_page_only_when_a_job_changed(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sacct: list[str] = []
    monkeypatch.setattr(slurm, "run_sacct", lambda bases, start: slurm.parse_sacct("\n".join(sacct)))
    monkeypatch.setattr(slurm, "run_squeue", lambda: [])
    monkeypatch.setattr(report, "write", lambda root, job_id: pytest.fail("a sync tick made a report"))
    refreshed: list[Path] = []
    refresh = overview.refresh
    monkeypatch.setattr(overview, "refresh", lambda root, rows: refreshed.append(refresh(root, rows)) or refreshed[-1])
    page = overview.page_path(root)

    def tick() -> list[str]:
        done = Tick(root, 60, clock=lambda: NOW).run()
        overview.after_tick(root, done)  # as orch sync does
        return done.changed

    assert tick() == ["400"] and refreshed == [page]  # RUNNING → UNKNOWN: sacct no longer shows it
    assert html.escape(HOSTILE) in page.read_text()
    assert tick() == [] and len(refreshed) == 1  # nothing changed: not rewritten
    page.unlink()
    assert tick() == [] and len(refreshed) == 2 and page.exists()  # a missing page is made
    create_entry(root, "600", {"submission.json": json.dumps({
        "scheduler": "slurm", "submitted_at": NOW.isoformat(), "request": {"mem_gb": 3}, "attempt": 1,
        "config": {"label": "delta_v1", "name": "delta", "version": 1}, "estimate": {"peak_gb": 2}})})
    assert tick() == ["600"] and len(refreshed) == 3 and "<td>delta_v1</td>" in page.read_text()
    sacct.append("600|CANCELLED by 0|0:15||3G|00:01:00|2026-05-01T00:00:00|2026-05-01T00:01:00|None|00:00:01")
    assert tick() == ["600"] and len(refreshed) == 4 and ">CANCELLED<" in page.read_text()  # ended and settled
    assert index.load(root)["600"]["settled"]
