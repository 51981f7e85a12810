"""``orch report JOB_ID``: the users' hand-kept notes, generated from the registry.

One page of blocks (headings, paragraphs, lists, tables, figures: ``orchestrator.present.page``) is
rendered twice: a self-contained HTML file (figures embedded as data URIs, a sortable trial table,
no server or network needed) and a Markdown file whose figures are PNG files beside
it. Both go beside the job's artifacts as ``<job_id>_report.*``. A running job gets
a report of what exists so far.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.core import attempts
from orchestrator.core.clock import now
from orchestrator.core.config_file import load_config
from orchestrator.core.files import make_dir, write_atomic, write_text_atomic
from orchestrator.core.records import read_json, read_record
from orchestrator.core.registry import JobPaths, artifacts_dir
from orchestrator.core.trials import FAILED, OK, Objective
from orchestrator.core.units import GIB, mib_to_gib
from orchestrator.present import insights, plots
from orchestrator.present.lineage import diff
from orchestrator.present.page import Figure, Page, Table, fmt, to_html, to_markdown
from orchestrator.track.status import duration, job_view


def build(root: Path, job_id: str) -> Page:
    """Gather everything the registry holds about ``job_id`` into a report."""
    view = job_view(root, job_id)
    paths = JobPaths(root, job_id)
    sub, sched, result = view["submission"], view["scheduler"] or {}, view["result"]
    records = attempts.search_records(paths)
    total = view["trials"]["total"] or len(records)
    objective = records[0]["objective_name"] if records else "objective"
    report = Page(f"{sub['config']['label']}, plane {sub.get('plane')}: job {job_id}")
    shown = view["state"]
    report.p(f"State {shown['state']}" + (f" ({shown['reason']})" if shown["reason"] else "")
             + f" · attempts {' → '.join(view['attempts'])} · report made "
             + now())

    report.h2("Observations")
    best = view["trials"]["best"]
    history = _history(root, best) if best else None
    notes = insights.search_insights(records, total, (read_json(paths.config).get("model_parameters") or {})
                                             .get("epochs"))
    if history and best.get("best_epoch"):
        notes += insights.training_insights(history, best["best_epoch"])
    report.ul(notes or ["no trial has finished yet"])

    _config_section(report, paths, sub)
    _trials_section(report, records, objective)
    report.h2("Figures")
    if records and any(r["status"] == OK for r in records):
        report.add(Figure("objective", f"{objective} per trial", plots.objective_per_trial(
            records, Objective(objective))))
        keys = sorted(read_json(paths.config).get("model_parameters", {}).get("space_options", {}))
        if keys:
            report.add(Figure("search_keys", "each search key against the objective",
                              plots.keys_vs_objective(records, keys, objective)))
    if history and best.get("best_epoch"):
        report.add(Figure("training", f"training of the best trial ({best['trial'] + 1})",
                          plots.training_curves(history, best["best_epoch"])))
    if result:
        roc_file = result["artifacts"].get("roc_curve")
        if roc_file and Path(roc_file).exists():
            roc = read_json(Path(roc_file))
            report.add(Figure("roc", "ROC curve on the test split", plots.roc(roc["fpr"], roc["tpr"],
                                                                               result["test"]["auc"])))
        report.add(Figure("confusion", "confusion matrix on the test split",
                          plots.confusion(result["test"]["confusion_matrix"])))
        report.h2("Test metrics")
        t = result["test"]
        report.add(Table(["accuracy", "precision", "recall", "F1", "AUC", "threshold", "samples", "positives"],
                         [[fmt(t["accuracy"]), fmt(t["precision"]), fmt(t["recall"]), fmt(t["f1"]), fmt(t["auc"]),
                           fmt(t["threshold"]), str(t["samples"]), str(t["positives"])]]))
        report.p(result["final_model"])
    _resources_section(report, sub, sched, result, view)
    return report


def _history(root: Path, record: dict[str, Any]) -> dict[str, list[float]] | None:
    path = JobPaths(root, record["job_id"]).trial_history(record["trial"])
    return read_json(path) if path.exists() else None


def _config_section(report: Page, paths: JobPaths, sub: dict[str, Any]) -> None:
    report.h2("Config")
    config = load_config(paths.config)
    report.p(f"{config.label} ({sub['config']['path']}), model {config.model_name}, {config.model.hp_max_evals} "
             f"trials, objective {config.model.objective}, proposer {config.model.describe_proposer()}, split "
             f"{config.dataset.train_fraction:g}/"
             f"{config.dataset.val_fraction:g}/{config.dataset.test_fraction:g}, balance "
             f"{config.dataset.balance_method if config.dataset.balance_data else 'off'}")
    report.ul(config.model.space.describe())
    parent = sub["config"].get("parent")
    if parent and Path(parent).exists():
        parent_config = load_config(parent, resolve_paths=False)
        changes = diff({**parent_config.raw, "data_directories": None, "output_folder": None},
                       {**config.raw, "data_directories": None, "output_folder": None})
        report.p(f"Changes from the parent version {parent_config.label}:")
        report.ul(changes or ["(no changes to the run)"])


def _trials_section(report: Page, records: list[dict[str, Any]], objective: str) -> None:
    report.h2(f"Trials ({len(records)})")
    rows = []
    for r in records:
        m = r.get("metrics") or {}
        rows.append([str(r["trial"] + 1), r["job_id"], r["status"], fmt(r.get("objective")), fmt(m.get("val_accuracy")),
                     fmt(m.get("val_auc")), fmt(m.get("val_f1")), fmt(r.get("epochs_run")), fmt(r.get("best_epoch")),
                     fmt(r.get("train_val_gap")), duration(r["duration_s"]), f"{mib_to_gib(r['peak_rss_mb']):.2f}",
                     " ".join(f"{k}={fmt(v, 3)}" for k, v in sorted(r["params"].items())) if r["status"] == OK
                     else r.get("reason", "") if r["status"] == FAILED
                     else f"pruned: {r.get('reason', '')}; " + " ".join(f"{k}={fmt(v, 3)}"
                                                                     for k, v in sorted(r["params"].items()))])
    report.add(Table(["trial", "job", "status", objective, "val acc", "val AUC", "val F1", "epochs", "best epoch",
                      "gap", "duration", "peak GB", "params / reason"], rows, sortable=True))


def _resources_section(report: Page, sub: dict[str, Any], sched: dict[str, Any], result: dict[str, Any] | None,
                       view: dict[str, Any]) -> None:
    report.h2("Resources")
    planned = sub.get("memory_plan") or sub["estimate"]
    rss = sched.get("max_rss_bytes")
    rows = [["memory", f"{sub['request']['mem_gb']:g} GB", f"{planned['peak_gb']:.2f} GB",
             f"{rss / GIB:.2f} GB (MaxRSS)" if rss else "–"],
            ["time", f"{sub['request']['timeout_min']} min", "–",
             duration(sched["elapsed_s"]) if sched.get("elapsed_s") is not None else "–"],
            ["CPUs", str(sub["request"]["cpus_per_task"]), "–", duration(sched["cpu_s"]) + " CPU"
             if sched.get("cpu_s") else "–"]]
    report.add(Table(["", "asked", "estimated", "used"], rows))
    if result:
        t = result["timings"]
        report.p(f"Wall time: load {duration(t['load_s'])} · trials {duration(t['trials_s'])} · final "
                 f"{duration(t['final_s'])}")
    report.p("Attempts: " + " → ".join(view["attempts"]))


def report_paths(root: Path, job_id: str) -> tuple[Path, Path]:
    """Where ``orch report`` writes the report of ``job_id``: ``<job_id>_report.html`` and ``.md`` beside
    the job's artifacts (its frozen config's ``output_folder``, else its ``artifacts/``)."""
    paths = JobPaths(root, job_id)
    folder = artifacts_dir(paths, read_record(paths.config).get("output_folder"))
    return folder / paths.artifact_name("report.html"), folder / paths.artifact_name("report.md")


def write(root: Path, job_id: str) -> tuple[Path, Path]:
    """Build the report and write it beside the job's artifacts (``report_paths``), its figures as
    ``<job_id>_report_<name>.png`` beside it; the HTML and Markdown paths."""
    report = build(root, job_id)
    html_path, md_path = report_paths(root, job_id)
    make_dir(html_path.parent)
    stem = html_path.stem
    for kind, item in report.blocks:
        if kind == "figure":
            write_atomic(html_path.with_name(f"{stem}_{item.name}.png"), lambda tmp, png=item.png: tmp.write_bytes(png))
    write_text_atomic(html_path, to_html(report))
    write_text_atomic(md_path, to_markdown(report, f"{stem}_"))
    return html_path, md_path
