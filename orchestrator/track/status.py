"""``orch status``: what the registry says about a job, or a table of jobs. Never calls the scheduler.

``job_view`` gathers one job's files into a plain dict (the ``--json`` output);
``format_job`` turns it into one screen. ``job_rows`` lists jobs from the index that
``orch sync`` keeps, plus any directory newer than the index.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from orchestrator.core import attempts, claims, index
from orchestrator.core.errors import InputError, OrchError
from orchestrator.core.files import open_file
from orchestrator.core.records import read_optional_record
from orchestrator.core.registry import JobPaths, validate_job_id
from orchestrator.core.state import UNSYNCED, RunStatus
from orchestrator.core.trials import FAILED, PRUNED, RESULTS
from orchestrator.core.units import GIB, KIB, mib_to_gib
from orchestrator.scheduler.backend import shown_state

LOG_LINES = 15
LOG_BYTES = 64 * KIB  # the most of a log's end read to show its last lines


def ago(moment: str | None, now: datetime) -> str:
    """``3 min ago`` for an ISO timestamp."""
    if not moment:
        return "never"
    seconds = (now - datetime.fromisoformat(moment)).total_seconds()
    return f"{duration(seconds)} ago"


def duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3 h 05 min``, ``2 d 4 h``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


def log_tail(path: Path, lines: int = LOG_LINES) -> list[str]:
    """The last ``lines`` lines of a log, from its last ``LOG_BYTES`` only: a log may be huge, or one
    endless line (``\r`` ends a line too, as progress bars use it)."""
    try:
        fd = open_file(path, os.O_RDONLY, "the job's log")
    except FileNotFoundError:
        return []
    except OrchError as exc:
        return [str(exc)]
    try:
        start = max(0, os.fstat(fd).st_size - LOG_BYTES)
        os.lseek(fd, start, os.SEEK_SET)
        data = os.read(fd, LOG_BYTES)
    finally:
        os.close(fd)
    text = data.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    found = text.split("\n")
    if found[-1] == "":
        found.pop()
    if start and len(found) > 1:
        found.pop(0)  # the first line is cut: the whole of it is before the part read
    return found[-lines:]


def array_tasks(root: Path, job_id: str) -> list[str]:
    """The registry's tasks of array ``job_id`` (``<job_id>_<n>``), in task order."""
    prefix = f"{job_id}_"
    names = [n for n in index.job_names(root) if n.startswith(prefix)]
    return sorted(names, key=lambda n: int(n.rsplit("_", 1)[1]))


def job_view(root: Path, job_id: str) -> dict[str, Any]:
    """Everything the registry knows about one job (or one search of several workers), as plain data."""
    paths = JobPaths(root, validate_job_id(job_id))
    submission = index.read_submission(paths)
    if submission is None:
        raise InputError(f"job {job_id}", f"not in the registry at {root} (is --registry or ORCH_REGISTRY right?)")
    records = attempts.search_records(paths, attempts.SUMMARY_CHARS)
    best = attempts.best_record(records)
    newest = attempts.newest(paths)
    search = attempts.search_of(paths)
    parallel = attempts.is_search_entry(search)
    holder = attempts.search_result(search) if parallel else paths
    result = read_optional_record(holder.result) if holder else None
    running = running_trials(search, records)
    scheduler = read_optional_record(paths.scheduler)
    shown = shown_state(paths, submission, scheduler)
    return {
        "job_id": job_id, "submission": submission, "scheduler": scheduler,
        "state": {"state": shown.state, "reason": shown.reason, "source": shown.source, "live": shown.live,
                  "own": {"state": shown.own.state.value, "reason": shown.own.reason} if shown.own else None},
        "run": read_optional_record(paths.run), "data": read_optional_record(paths.data_record), "result": result,
        "local": read_optional_record(paths.local_state),
        "trials": {"total": index.total_trials(paths), "done": len(records),
                   "failed": sum(1 for r in records if r["status"] == FAILED),
                   "pruned": sum(1 for r in records if r["status"] == PRUNED),
                   "this_attempt": sum(1 for r in records if r["job_id"] == job_id),
                   "mean_duration_s": (sum(r["duration_s"] for r in records) / len(records)) if records else None,
                   "best": best, "last": records[-1] if records else None},
        "attempts": [p.job_id for p in attempts.chain(paths)] + attempts.descendants(paths),
        "members": [m.job_id for m in attempts.members_with(paths)],
        "search_id": search.job_id if parallel else None,
        "workers": worker_views(search, running, records) if parallel else None,
        "running": sorted(running.values(), key=lambda t: t["trial"]),
        "newest_attempt": newest.job_id, "synced_at": index.written_at(root),
        "paths": {"dir": str(paths.dir), "log": str(paths.log), "result": str((holder or paths).result),
                  "artifacts": (result or {}).get("artifacts", {})},
    }


def running_trials(search: JobPaths, records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """job ID → the trial it runs now (claimed, not recorded), with its last epoch from its progress file."""
    held = claims.running(claims.current(search.claims), {r["trial"] for r in records})
    return {owner["job_id"]: {"trial": n, **last_line(JobPaths(search.root, owner["job_id"]).progress(n))}
            for n, owner in held.items()}


def last_line(path: Path) -> dict[str, Any]:
    """The last complete record of a small JSON-lines file ({} when none)."""
    try:
        lines = [line for line in path.read_bytes().splitlines(keepends=True) if line.endswith(b"\n")]
        return json.loads(lines[-1]) if lines else {}
    except (OSError, ValueError):
        return {}


def worker_views(search: JobPaths, running: dict[str, dict[str, Any]],
                 records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each worker of a search: its newest attempt, state, trials recorded and the trial it runs now."""
    views = []
    for worker in attempts.workers(search):
        first = JobPaths(search.root, worker)
        chain = [worker, *attempts.descendants(first)]
        newest = JobPaths(search.root, chain[-1])
        shown = shown_state(newest, read_optional_record(newest.submission) or {}, read_optional_record(newest.scheduler))
        run = read_optional_record(newest.run) or {}
        views.append({"worker": worker, "job_id": newest.job_id, "attempts": chain,
                      "state": shown.state, "run": run.get("status"),
                      "trials": sum(1 for r in records if r["job_id"] in chain),
                      "current_trial": running.get(newest.job_id, {}).get("trial")})
    return views


def progress_bar(done: int, total: int, width: int = 20) -> str:
    filled = min(width, round(width * done / total)) if total else 0
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def format_job(view: dict[str, Any], now: datetime | None = None) -> list[str]:
    """One screen about one job."""
    now = now or datetime.now(timezone.utc)
    sub, sched, run, result = view["submission"], view["scheduler"] or {}, view["run"] or {}, view["result"]
    config = sub["config"]
    if sub.get("worker_ids"):
        what = f"search of {len(sub['worker_ids'])} workers"
    elif view["search_id"]:
        what = f"worker {sub.get('worker')} of search {view['search_id']}, attempt {sub.get('attempt', 1)}"
    else:
        what = f"attempt {sub.get('attempt', 1)}"
    lines = [f"{view['job_id']}  {config['label']}, plane {sub.get('plane')}  ({what}, {sub['scheduler']})"]
    if view["newest_attempt"] != view["job_id"]:
        lines.append(f"newer    this search continues in {view['newest_attempt']}: orch status {view['newest_attempt']}")
    shown, own = view["state"], view["state"]["own"]
    synced = view["synced_at"] if "recovery" not in sched else sched.get("changed_at")
    if shown["live"]:
        freshness = f"  ({shown['source']})"
    else:
        freshness = f"  (scheduler state synced {ago(synced, now)}, from {shown['source']})" if sched else ""
    lines.append(f"state    {shown['state']}" + (f": {shown['reason']}" if shown["reason"] else "") + freshness)
    if own:
        lines.append(f"job      {own['state']} by its own records" + (f": {own['reason']}" if own["reason"] else "")
                     + "; not yet confirmed by the scheduler (orch sync)")
    elif run.get("status") and run.get("status") != RunStatus.COMPLETED:
        lines.append(f"job      {run['status']}" + (f": {run['reason']}" if run.get("reason") else ""))
    recovery = sched.get("recovery")
    if recovery:
        lines.append(f"recovery {recovery.get('decision') if isinstance(recovery, dict) else recovery}")
    times = [f"submitted {sub['submitted_at']}"]
    if sched.get("start") or run.get("started_at"):
        times.append(f"started {sched.get('start') or run.get('started_at')}")
    if sched.get("end") or run.get("ended_at"):
        times.append(f"ended {sched.get('end') or run.get('ended_at')}")
    if sched.get("elapsed_s") is not None:
        times.append(f"elapsed {duration(sched['elapsed_s'])}")
    if sched.get("cpu_s"):
        times.append(f"CPU {duration(sched['cpu_s'])}")
    lines.append("times    " + " · ".join(times))
    lines.append("memory   " + _memory(sub, sched))
    lines += _trials(view, now)
    if view["workers"]:
        lines += _workers(view["workers"])
    if result:
        t = result["test"]
        lines.append(f"test     accuracy {t['accuracy']:.4f} · precision {t['precision']:.4f} · recall "
                     f"{t['recall']:.4f} · F1 {t['f1']:.4f} · AUC {t['auc']:.4f} ({t['samples']} samples, "
                     f"threshold {t['threshold']})")
    if len(view["attempts"]) > 1:
        lines.append("attempts " + " → ".join(view["attempts"]))
    lines.append(f"log      {view['paths']['log']}")
    if view["paths"]["artifacts"]:
        lines.append(f"results  {view['paths']['result']} (artifacts: {len(view['paths']['artifacts'])} files)")
    if shown["state"] in ("FAILED", "OUT_OF_MEMORY", "NODE_FAIL") or run.get("status") == FAILED:
        lines += ["last lines of the log:", *("  " + x for x in log_tail(Path(view["paths"]["log"])))]
    return lines


def _memory(sub: dict[str, Any], sched: dict[str, Any]) -> str:
    asked = sub["request"]["mem_gb"]
    planned = sub.get("memory_plan") or sub["estimate"]
    text = f"asked {asked:g} GB · estimated peak {planned['peak_gb']:.1f} GB"
    rss = sched.get("max_rss_bytes")
    if rss:
        text += f" · used {rss / GIB:.2f} GB ({100 * rss / GIB / asked:.0f} % of the limit)"
    return text


def _trials(view: dict[str, Any], now: datetime) -> list[str]:
    t = view["trials"]
    total = t["total"] or 0
    line = f"trials   {progress_bar(t['done'], total)} {t['done']}/{total}"
    if t["failed"]:
        line += f" · {t['failed']} failed"
    if t["pruned"]:
        line += f" · {t['pruned']} pruned"
    running = (view["scheduler"] or {}).get("state") == "RUNNING"
    if running and t["mean_duration_s"] and t["done"] < total:
        eta = t["mean_duration_s"] * (total - t["done"])
        line += f" · ETA {duration(eta)} (mean {duration(t['mean_duration_s'])} per trial)"
    lines = [line]
    for trial in view["running"]:
        now_at = (f": epoch {trial['epoch']}, {trial['metric']} {trial['value']:.4f}" if "epoch" in trial
                  else ": starting")
        lines.append(f"running  trial {trial['trial'] + 1}{now_at}")
    best, last = t["best"], t["last"]
    if best:
        metrics = " · ".join(f"{k} {v:.4f}" for k, v in sorted((best.get("metrics") or {}).items())
                             if k != best["objective_name"])
        lines.append(f"best     trial {best['trial'] + 1} ({best['job_id']}): {best['objective_name']} "
                     f"{best['objective']:.4f} · {metrics}")
        lines.append("         " + " ".join(f"{k}={_short(v)}" for k, v in sorted((best.get("params") or {}).items())))
    if last:
        what = (f"{last['objective_name']} {last['objective']:.4f}" if last["status"] in RESULTS
                else f"failed: {last['reason']}")
        if last["status"] == PRUNED:
            what += f", pruned after {last.get('epochs_run')} epochs"
        lines.append(f"last     trial {last['trial'] + 1}: {what} ({duration(last['duration_s'])}, peak "
                     f"{mib_to_gib(last['peak_rss_mb']):.2f} GB)")
    return lines


def _workers(workers: list[dict[str, Any]]) -> list[str]:
    running = sum(1 for w in workers if w["state"] == "RUNNING" or (w["state"] == UNSYNCED and w["run"] == RunStatus.RUNNING))
    lines = [f"workers  {running}/{len(workers)} running"]
    for w in workers:
        state = w["state"] + (f" (the job says {w['run']})" if w["state"] == UNSYNCED and w["run"] else "")
        doing = f" · running trial {w['current_trial'] + 1}" if w["current_trial"] is not None else ""
        via = f" (attempt {len(w['attempts'])}: {w['job_id']})" if len(w["attempts"]) > 1 else ""
        lines.append(f"  {w['worker']}{via}  {state} · {w['trials']} trials{doing}")
    return lines


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def job_rows(root: Path, workers: bool = False) -> list[dict[str, Any]]:
    """A summary row per job (a search of several workers is one row; ``workers`` adds a row for each
    of its workers): the index's, refreshed from the files for jobs not settled or not indexed."""
    rows = index.load(root)
    out = []
    for name in index.job_names(root):
        row = rows.get(name)
        if row is None or not row.get("settled"):
            row = index.current_row(JobPaths(root, name), shown_state)
            if row is None:
                continue
        if workers or not row.get("search_id"):
            out.append(row)
    return sorted(out, key=lambda r: (r["submitted_at"] or "", r["job_id"]), reverse=True)


def parse_since(text: str, now: datetime) -> datetime:
    """``7d``, ``12h``, ``30m`` before now, or an ISO date/time."""
    match = re.fullmatch(r"([0-9]+)([dhm])", text)
    if match:
        unit = {"d": "days", "h": "hours", "m": "minutes"}[match[2]]
        return now - timedelta(**{unit: int(match[1])})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InputError("--since", f"{text!r}: expected a duration like 7d, 12h, 30m or a date like 2026-11-01") \
            from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def filter_rows(rows: list[dict[str, Any]], config: str | None, states: list[str] | None,
                since: datetime | None) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        if config and config not in (r.get("name"), r.get("label")):
            continue
        if states and r["state"] not in states:
            continue
        if since and (not r["submitted_at"] or datetime.fromisoformat(r["submitted_at"]) < since):
            continue
        out.append(r)
    return out


def job_table(rows: list[dict[str, Any]]) -> list[str]:
    header = ("JOB", "CONFIG", "PLANE", "STATE", "TRIALS", "MEM GB", "MAXRSS GB", "SUBMITTED", "ATTEMPT", "WORKERS")
    table = [header]
    for r in rows:
        rss = r.get("max_rss_bytes")
        workers = r.get("workers")
        table.append((r["job_id"], r.get("label") or "?", r.get("plane") or "", r["state"], str(r["trials_done"]),
                      f"{r['mem_gb']:g}" if r.get("mem_gb") is not None else "", f"{rss / GIB:.2f}" if rss else "",
                      (r["submitted_at"] or "")[:16].replace("T", " "),
                      str(r.get("attempt", 1)) + (f" → {r['children'][-1]}" if r.get("children") else ""),
                      f"{workers['running']}/{workers['total']} running" if workers else
                      (f"of {r['search_id']}" if r.get("search_id") else "")))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table]

