"""The plan of a submission: everything that can fail on bad input (config, data pre-flight, memory
estimate, site profile, batch script), decided and checked before anything is queued or written,
and the plan in words (``orch validate``, ``orch submit --dry-run``)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from orchestrator.core import index
from orchestrator.core.config import Config, parent_path, require_proposer
from orchestrator.core.config_file import load_config
from orchestrator.launch.memory import MODEL, MemoryEstimate, calibrate, estimate
from orchestrator.launch.sbatch import Request, build_request, format_time, render
from orchestrator.launch.scan import ScanReport, format_table, scan
from orchestrator.launch.site import SiteProfile, load_profile


@dataclass(frozen=True)
class Plan:
    """Everything a submission will do, decided and checked, nothing done yet."""

    config: Config
    reports: tuple[ScanReport, ...]  # one per plane
    estimate: MemoryEstimate  # of the largest plane: every array task gets the same --mem
    profile: SiteProfile
    request: Request
    script: str
    root: Path

    @property
    def memory_line(self) -> str:
        if self.config.resources.mem_gb is None:
            return self.estimate.describe()
        line = f"estimated peak {self.estimate.peak_gb:.1f} GB; requesting {self.request.mem_gb:g} GB (resources.mem_gb)"
        if self.estimate.peak_gb > self.request.mem_gb:
            line += "  WARNING: the estimate exceeds the request; expect OUT_OF_MEMORY"
        return line


def plan(config_path: str | Path, root: Path, mem_gb: float | None = None, workers: int | None = None,
         submitted: list[str] | None = None) -> Plan:
    """Validate ``config_path`` and its data, and prepare the submission to ``root``; ``mem_gb``
    overrides the memory request (a new attempt after OUT_OF_MEMORY, ``orch resubmit --mem``),
    ``workers`` the config's number of workers (a new attempt of one worker is one job). With
    ``submitted`` (a new attempt: the hash its parent was submitted with), the frozen config must
    be unchanged since."""
    config = load_config(config_path, submitted=submitted)
    reports = tuple(scan(config, plane) for plane in config.planes)
    largest = calibrate(max((estimate(config, r) for r in reports), key=lambda e: e.peak_gb),
                        measured_history(root, config.name))
    profile = load_profile(config.resources.site)
    if profile.python == sys.executable:  # the job runs this interpreter: its proposer's library must be here
        require_proposer(config)
    request = build_request(config, profile, largest.request_gb, workers, mem_gb)
    script = render(config, request, profile, root)
    return Plan(config, reports, largest, profile, request, script, root)


def measured_history(root: Path, name: str) -> list[tuple[str, float, float]]:
    """(job ID, measured peak GB, predicted peak GB) of the completed jobs of config ``name``, newest
    first, from the index ``orch sync`` keeps; only those predicted by today's memory model (an older
    model's ratio says nothing about this one's)."""
    rows = [r for r in index.load(root).values()
            if r.get("name") == name and r.get("state") == "COMPLETED" and r.get("measured_peak_gb")
            and r.get("estimate_model") == MODEL]
    rows.sort(key=lambda r: r["submitted_at"], reverse=True)
    return [(r["job_id"], r["measured_peak_gb"], r["estimated_peak_gb"]) for r in rows]


def describe(p: Plan, notes: bool = False) -> list[str]:
    """The plan in words, as ``orch validate`` and ``orch submit --dry-run`` print it; ``notes``: also the
    config's ``training_notes`` and ``metadata`` in full."""
    c = p.config
    parent = parent_path(c)
    m = c.model
    lines = [f"config   {c.path}",
             f"name     {c.name} v{c.version}" + (f" (parent: {parent.name})" if parent else " (first version)"),
             f"task     {c.task}, model {c.model_name}, {m.hp_max_evals} trials, objective {m.objective}, "
             f"{m.epochs} epochs max" + (f", early stopping on {m.early_stopping.monitor} (patience "
                                          f"{m.early_stopping.patience})" if m.early_stopping else ""),
             f"planes   {', '.join(c.planes)}" + _tasks(p),
             f"proposer {m.describe_proposer()}"
             + (f"; {c.resources.workers} workers share each search, claims taken over after "
                f"{c.resources.heartbeat_limit_s:g} s without heartbeat" if c.resources.workers > 1 else ""),
             f"label    {c.dataset.label.describe()}; balance: "
             f"{c.dataset.balance_method if c.dataset.balance_data else 'off'}; split "
             f"{c.dataset.train_fraction:g}/{c.dataset.val_fraction:g}/{c.dataset.test_fraction:g}",
             "search space:"]
    lines += [f"  {line}" for line in m.space.describe()]
    if "batch_size" in m.space.names:
        lines.append(f"  model_parameters.batch_size={m.batch_size}: evaluation and prediction batch size "
                     "(training batch size is searched)")
    else:
        lines.append(f"  batch_size: fixed {m.batch_size} (model_parameters.batch_size)")
    lines += ["data:", *(f"  {row}" for row in format_table(list(p.reports)))]
    for report in p.reports:
        for d in report.dirs:
            lines += [f"  skipped {path}: {why}" for path, why in d.bad]
    r = p.request
    lines += [f"memory   {p.memory_line}",
              f"request  --mem {r.mem_gb:g} GB, --time {format_time(r.timeout_min)}, {r.cpus_per_task} CPUs, {r.gpus} GPUs, "
              f"site profile {p.profile.name}" + (f", partition {r.partition}" if r.partition else "")]
    for block in ("training_notes", "metadata"):
        value = getattr(c, block)
        if value and notes:
            lines += [f"{block}:", *("  " + x for x in json.dumps(value, indent=2).splitlines())]
        elif value:
            lines.append(f"{block}: {', '.join(value)} (kept as written; --notes to show)")
    return lines


def _tasks(p: Plan) -> str:
    """How the planes map to array tasks."""
    r = p.request
    if r.workers > 1:
        per = "one array" if len(p.config.planes) == 1 else f"one array per plane ({len(p.config.planes)} searches)"
        return f" ({r.workers} workers: {per}, --array={r.array}, task i = worker i)"
    return f" (job array {r.array}: task i = plane i)" if r.array else ""
