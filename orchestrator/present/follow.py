"""``orch submit --wait``: follow the submitted searches in the registry until they end.

Every poll reads the searches' trial records (what ``orch status`` reads) and shows each trial as it
ends: on a terminal a progress bar per search (tqdm: trials done of total, best so far, elapsed and
the time left at the trials' pace), otherwise one line per finished trial. A search has ended when
its backend says so (``Backend.end_state``): the local executor recorded its end (its state is known
at once), or SLURM no longer queues it (its state is what the job's own records say, ENDED when they
say nothing: ``orch sync`` records the scheduler's word). Then a summary per search: state, best trial and its point, test
metrics, the result file and the report (made as ``orch report`` makes it), and the commands to go
on with.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

from orchestrator.core import attempts
from orchestrator.core.errors import OrchError
from orchestrator.core.index import read_submission, total_trials
from orchestrator.core.records import read_optional_record
from orchestrator.core.registry import JobPaths
from orchestrator.core.trials import FAILED, PRUNED, RESULTS
from orchestrator.scheduler.backend import Backend, of
from orchestrator.track.status import duration


@dataclass
class Followed:
    """One search as followed: what was shown of it so far."""

    paths: JobPaths
    submission: dict[str, Any]
    total: int
    started: float = field(default_factory=time.monotonic)
    seen: set[int] = field(default_factory=set)
    ended: str | None = None  # its state, once it ended
    bar: Any = None  # its tqdm bar, on a terminal

    @property
    def label(self) -> str:
        return (self.submission.get("config") or {}).get("label") or "?"

    @property
    def backend(self) -> Backend:
        return of(self.submission)

    def records(self) -> list[dict[str, Any]]:
        return attempts.search_records(self.paths, attempts.SUMMARY_CHARS)


def follow(root: Path, job_ids: list[str], poll_s: float, out: TextIO | None = None,
           make_report: Callable[[Path, str], Path] | None = None) -> int:
    """Follow ``job_ids`` (each a search, as ``submit`` returns them) until every one ended, looking every
    ``poll_s`` (or as often as their backend says), printing to ``out`` (standard output); print the
    summaries; 0 when every search completed, else 1."""
    out = out or sys.stdout
    searches = [_followed(JobPaths(root, job_id)) for job_id in job_ids]
    bars = out.isatty()
    if bars:
        from tqdm import tqdm

        for s in searches:
            s.bar = tqdm(total=s.total, desc=f"{s.paths.job_id} {s.label}", unit="trial", file=out,
                         dynamic_ncols=True)
    interval = min(s.backend.poll_s or poll_s for s in searches)
    try:
        while True:
            for s in searches:
                if s.ended is None:
                    _poll(s, out)
            if all(s.ended for s in searches):
                break
            time.sleep(interval)
    except KeyboardInterrupt:
        print(f"\nstopped following; the search runs on: orch status {job_ids[0]}", file=out)
        raise
    for s in searches:
        if s.bar is not None:
            s.bar.close()
        print(file=out)
        for line in summary(s, make_report or _report):
            print(line, file=out)
    return 0 if all(s.ended == "COMPLETED" for s in searches) else 1


def _followed(paths: JobPaths) -> Followed:
    return Followed(paths, read_submission(paths) or {}, total_trials(paths) or 0)


def _poll(s: Followed, out: TextIO) -> None:
    """Show the trials that ended since the last poll; note the search's end."""
    ended = s.backend.end_state(s.paths, s.submission)  # before the records: a search seen ended has all its records written
    records = s.records()
    best = attempts.best_record(records)
    for record in sorted((r for r in records if r["trial"] not in s.seen), key=lambda r: r["trial"]):
        s.seen.add(record["trial"])
        if s.bar is not None:
            s.bar.update(1)
            if best:
                s.bar.set_postfix_str(best_text(best))
        else:
            print(trial_line(record, best, len(s.seen), s.total, time.monotonic() - s.started), file=out, flush=True)
    s.ended = ended


def trial_line(record: dict[str, Any], best: dict[str, Any] | None, done: int, total: int, elapsed_s: float) -> str:
    """One finished trial, the best so far, the time spent and left (at the pace of the trials so far)."""
    if record["status"] in RESULTS:
        what = f"{record['objective_name']} {record['objective']:.4f}"
        if record["status"] == PRUNED:
            what += f", pruned after {record.get('epochs_run')} epochs"
    else:
        what = f"failed: {record.get('reason')}"
    line = f"trial {record['trial'] + 1} ({done}/{total}) {what} in {duration(record['duration_s'])}"
    if best:
        line += f" · {best_text(best)}"
    line += f" · elapsed {duration(elapsed_s)}"
    if 0 < done < total:
        line += f" · about {duration(elapsed_s / done * (total - done))} left"
    return line


def best_text(best: dict[str, Any]) -> str:
    """The best trial so far, in a few words."""
    return f"best {best['objective_name']} {best['objective']:.4f} (trial {best['trial'] + 1})"


def _report(root: Path, job_id: str) -> Path:
    from orchestrator.present.report import write

    return write(root, job_id)[0]


def summary(s: Followed, make_report: Callable[[Path, str], Path]) -> list[str]:
    """What a finished search found, where its files are, and what to run next."""
    job_id, records = s.paths.job_id, s.records()
    failed = sum(1 for r in records if r["status"] == FAILED)
    pruned = sum(1 for r in records if r["status"] == PRUNED)
    lines = [f"{job_id} {s.label} {s.ended} after {duration(time.monotonic() - s.started)}: "
             f"{len(records)}/{s.total} trials" + (f", {failed} failed" if failed else "")
             + (f", {pruned} pruned" if pruned else "")]
    best = attempts.best_record(records)
    if best:
        point = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in sorted((best.get("params") or {}).items()))
        lines += [f"best     trial {best['trial'] + 1}: {best['objective_name']} {best['objective']:.4f}",
                  f"         {point}"]
    holder = attempts.search_result(attempts.search_of(s.paths))
    result = read_optional_record(holder.result) if holder else None
    if result:
        t = result["test"]
        lines += [f"test     accuracy {t['accuracy']:.4f} · F1 {t['f1']:.4f} · AUC {t['auc']:.4f} "
                  f"({t['samples']} samples)", f"result   {holder.result}"]
    if records:
        try:
            lines.append(f"report   {make_report(s.paths.root, job_id)}")
        except (OrchError, OSError) as exc:
            lines.append(f"report   not made: {exc}")
    lines.append(f"next     orch status {job_id} · orch report {job_id} · orch compare {s.label}"
                 if s.ended == "COMPLETED" else
                 f"next     orch status {job_id} (its log) · orch sync (records the end, recovers what can be)")
    return lines
