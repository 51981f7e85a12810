"""``orch sync``: one tick that keeps the registry true, for cron.

Per tick, whatever the number of tracked jobs: one batched ``sacct`` over every
job not yet settled, and at most one ``squeue`` for the ones sacct does not show
yet. Settled jobs (terminal, recovery decided) are never queried again. A job
missing from sacct is UNKNOWN, never failed or done from absence; after a grace
period its own registry records may settle it. Without accounting (sacct fails),
``scontrol show job`` and the jobs' own records stand in, and the problem is
reported. Sync is the only writer of ``scheduler.json`` and of the index. ``orch sync`` then
rewrites the registry's overview page when the tick changed a job (``orchestrator.present.overview``).
"""

from __future__ import annotations

import fcntl
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

from orchestrator.core import attempts, index, sweep
from orchestrator.core.clock import iso, now_utc
from orchestrator.core.config_file import load_config
from orchestrator.core.errors import OrchError
from orchestrator.core.files import (
    STICKY_DIR_MODE,
    make_dir,
    open_file,
    write_json_atomic,
)
from orchestrator.core.records import NONSENSE, read_optional_record, read_record
from orchestrator.core.registry import JobPaths, jobs_dir
from orchestrator.core.state import JobState, Observation
from orchestrator.launch.site import load_profile
from orchestrator.scheduler import backend
from orchestrator.scheduler.backend import shown_state
from orchestrator.scheduler.observe import own_records, search_observation, with_own_end
from orchestrator.track.recovery import Policy, decide

GRACE_S = 900  # a job may be invisible to sacct this long before its own records may settle it


@dataclass
class Report:
    """What a tick saw and did; ``changes`` and ``problems`` are what cron should show."""

    changes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)  # every decision, for --verbose
    scheduler_calls: int = 0
    tracked: int = 0
    swept: int = 0  # leftovers of interrupted writes removed
    skipped: str | None = None
    changed: list[str] = field(default_factory=list)  # jobs whose state, reason or MaxRSS changed, or that settled
    overview: str | None = None  # the overview page, when it was rewritten after this tick


class Lock:
    """An exclusive, non-blocking lock on ``<root>/locks/sync.lock`` so overlapping ticks never both run.

    ``locks/`` is sticky, so no member of the group but the lock file's owner can remove or replace
    it while a tick holds it; it is opened without following links and made group-writable."""

    def __init__(self, root: Path) -> None:
        folder = root / "locks"
        make_dir(folder, STICKY_DIR_MODE)
        self.fd = open_file(folder / "sync.lock", os.O_RDWR | os.O_CREAT, "the sync lock, a group-writable file")

    def acquire(self) -> bool:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def release(self) -> None:
        os.close(self.fd)


def save_scheduler_record(paths: JobPaths, record: dict[str, Any]) -> None:
    """Replace the job's ``scheduler.json`` (its folder is made with the entry; one made by an older orch lacks it)."""
    make_dir(paths.scheduler.parent)
    write_json_atomic(paths.scheduler, record)


def row(paths: JobPaths, submission: dict[str, Any], record: dict[str, Any] | None) -> dict[str, Any]:
    """The job's index row after this tick, in the state its backend shows with sync's ``record``."""
    return index.row(paths, submission, record, shown_state(paths, submission, record))


class Tick:
    """One sync tick over the registry at ``root``."""

    def __init__(self, root: Path, budget_s: float, clock: Callable[[], datetime] = now_utc) -> None:
        self.root = root
        self.clock = clock
        self.deadline = time.monotonic() + budget_s
        self.report = Report()
        self.rows = index.load(root)

    def run(self) -> Report:
        tracked = self.tracked()
        self.report.tracked = len(tracked)
        searches = [t for t in tracked if t[1].get("worker_ids")]
        jobs = [t for t in tracked if not t[1].get("worker_ids")]
        observed = self.observe(jobs)
        for paths, submission, previous in jobs:
            self.each(paths, lambda: self.sync_job(paths, submission, previous, observed))
        for paths, submission, previous in searches:  # after their workers, whose records they sum up
            self.each(paths, lambda: self.sync_search(paths, submission, previous))
        self.sweep()
        index.save(self.root, self.rows, iso(self.clock()))
        return self.report

    def sweep(self) -> None:
        """Remove the leftovers of interrupted writes untouched for a day: the registry's own every tick,
        and a settled job's once, a day after it settled (by then every leftover of it is that old)."""
        swept = sweep.Swept()
        cutoff = time.time() - sweep.AGE_S  # against the files' times
        sweep.sweep_root(self.root, cutoff, swept)
        due = iso(self.clock() - timedelta(seconds=sweep.AGE_S))
        for job_id, row in self.rows.items():
            if row.get("settled") and not row.get("swept") and str(row.get("settled_at") or "") < due:
                if time.monotonic() > self.deadline:
                    self.report.problems.append("time budget used up; sweeping settled jobs goes on next tick")
                    break
                left = len(swept.left)
                sweep.sweep_tree(jobs_dir(self.root) / job_id, cutoff, swept)
                row["swept"] = len(swept.left) == left  # else looked at again, until their owner's sync removed them
        self.report.swept = swept.removed
        self.report.problems += swept.problems
        if swept.removed:
            self.report.changes.append(f"swept {swept.removed} leftovers of interrupted writes (untouched for a day)")

    def each(self, paths: JobPaths, step: Callable[[], None]) -> None:
        """Run one job's step of the tick; a job whose files cannot be read is reported and the tick goes
        on for every other job."""
        try:
            step()
        except OrchError as exc:
            self.report.problems.append(f"skipped {paths.job_id}: {exc}")
        except OSError as exc:
            self.report.problems.append(f"skipped {paths.job_id}: {exc.filename}: {exc.strerror}")
        except NONSENSE as exc:  # a record edited into nonsense
            self.report.problems.append(f"skipped {paths.job_id}: unexpected content in its records "
                                        f"({type(exc).__name__}: {exc})")

    def sync_job(self, paths: JobPaths, submission: dict[str, Any], previous: dict[str, Any] | None,
                 observed: dict[str, Observation]) -> None:
        """Update one job's record from what the scheduler (or the local executor) says, recover it once it
        ended, and refresh its row."""
        observation = observed.get(paths.job_id)
        if observation is not None:
            observation = with_own_end(paths, observation)
        current = self.update(paths, submission, previous, observation)
        if JobState(current["state"]).terminal and "recovery" not in current:
            if time.monotonic() > self.deadline:
                self.report.problems.append(f"time budget used up; recovery of {paths.job_id} waits for the next tick")
            else:
                current = self.recover(paths, submission, current)
        self.rows[paths.job_id] = row(paths, submission, current)

    def sync_search(self, paths: JobPaths, submission: dict[str, Any], previous: dict[str, Any] | None) -> None:
        """Update a search of several workers from its workers' records, settle it once they all are, and
        refresh its row."""
        current, settled = self.update_search(paths, submission, previous)
        if settled and "recovery" not in current:
            current = self.settle(paths, current, "a search of several workers: each worker is recovered on its own")
        self.rows[paths.job_id] = row(paths, submission, current)

    def update_search(self, paths: JobPaths, submission: dict[str, Any],
                      previous: dict[str, Any] | None) -> tuple[dict[str, Any], bool]:
        """A search's record from its workers' newest attempts (their records are this tick's);
        whether every one of them is settled."""
        newest = [attempts.newest(JobPaths(self.root, w)) for w in attempts.workers(paths)]
        records = [read_optional_record(p.scheduler) or {} for p in newest]
        observation = search_observation([r.get("state") for r in records],
                                         attempts.search_result(paths) is not None)
        settled = all("recovery" in r for r in records)
        if not settled and previous:  # a worker got a new attempt after the search was settled
            previous = {k: v for k, v in previous.items() if k != "recovery"}
        current = self.update(paths, submission, previous, observation)
        if not settled:
            current.pop("recovery", None)
        return current, settled

    def tracked(self) -> list[tuple[JobPaths, dict[str, Any], dict[str, Any] | None]]:
        """Every job not yet settled: new directories and the index's unsettled rows. A job the index has
        no row for (a new one, or the index was lost) that its own record says is settled gets its row
        back from that record and is not tracked: the scheduler may have long forgotten it."""
        found: dict[str, tuple[JobPaths, dict[str, Any], dict[str, Any] | None]] = {}
        names = index.job_names(self.root)
        present = set(names)
        wanted = [n for n in names if not self.rows.get(n, {}).get("settled")]
        reopened: set[str] = set()  # settled searches that a worker's new attempt reopens
        for name in wanted:
            if name in found:
                continue
            paths = JobPaths(self.root, name)
            try:
                submission = index.read_submission(paths)
                previous = self.previous(paths) if submission is not None else None
            except (OrchError, OSError) as exc:  # one bad entry must not stop the tick for every other job
                self.report.problems.append(f"skipped {name}: {exc}")
                continue
            if submission is None:
                continue
            if previous and "recovery" in previous and name not in self.rows and name not in reopened:
                self.each(paths, lambda: self.rows.update({name: row(paths, submission, previous)}))
                continue
            found[name] = (paths, submission, previous)
            search = submission.get("search_id")
            if search and search in present and search not in found and search not in reopened:
                reopened.add(search)
                wanted.append(search)
        return list(found.values())

    def previous(self, paths: JobPaths) -> dict[str, Any] | None:
        """The job's scheduler record as sync last wrote it; one that cannot be read is reported and the
        job observed anew (and the record rewritten)."""
        try:
            return read_record(paths.scheduler)
        except FileNotFoundError:
            return None
        except OrchError as exc:
            self.report.problems.append(f"{exc}; the job is observed anew")
            return None

    def observe(self, jobs: list[tuple[JobPaths, dict[str, Any], dict[str, Any] | None]]) -> dict[str, Observation]:
        """What each backend says of its jobs now, one look per backend."""
        by_backend: dict[str, list[tuple[JobPaths, dict[str, Any]]]] = {}
        for paths, submission, _ in jobs:
            by_backend.setdefault(submission["scheduler"], []).append((paths, submission))
        observed: dict[str, Observation] = {}
        for name, its_jobs in by_backend.items():
            seen = backend.named(name).observe(its_jobs)
            observed.update(seen.jobs)
            self.report.scheduler_calls += seen.calls
            self.report.problems += seen.problems
        return observed

    def update(self, paths: JobPaths, submission: dict[str, Any], previous: dict[str, Any] | None,
               observation: Observation | None) -> dict[str, Any]:
        """The job's new scheduler record (written when it changed)."""
        now = self.clock()
        previous = previous or {}
        if observation is None:
            observation = self.unseen(paths, submission, previous, now)
        previous = {k: v for k, v in previous.items() if k != "changed_at"}
        record = {**previous, **observation.record()}
        if observation.state is not JobState.UNKNOWN:
            record.pop("missing_since", None)
        elif "missing_since" not in record:
            record["missing_since"] = iso(now)
        if record == previous:  # unchanged: no write (the index's tick time says how fresh it is)
            return record
        before = (previous.get("state"), previous.get("reason"), previous.get("max_rss_bytes"))
        after = (record["state"], record["reason"], record["max_rss_bytes"])
        if before != after:
            self.report.changed.append(paths.job_id)
            self.report.changes.append(f"{paths.job_id}: {before[0] or 'new'} → {record['state']}"
                                       + (f" ({record['reason']})" if record["reason"] else ""))
        record["changed_at"] = iso(now)
        save_scheduler_record(paths, record)
        return record

    def unseen(self, paths: JobPaths, submission: dict[str, Any], previous: dict[str, Any],
               now: datetime) -> Observation:
        """A SLURM job no source shows: UNKNOWN, unless past the grace period its own records settle it."""
        since = datetime.fromisoformat(previous.get("missing_since") or iso(now))
        submitted = datetime.fromisoformat(submission["submitted_at"])
        if (now - max(since, submitted)).total_seconds() > GRACE_S:
            own = own_records(paths)
            if own is not None:
                return own
            self.report.problems.append(f"{paths.job_id}: not visible to the scheduler since {iso(since)}")
        return Observation(JobState.UNKNOWN, "not yet visible to the scheduler", "none")

    def recover(self, paths: JobPaths, submission: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
        """Decide what to do with an ended job, act, and record the decision; a job whose next attempt
        another command is making (``next_attempt.json``, no child yet) is left for a later tick."""
        state = JobState(record["state"])
        kids = attempts.children(paths)
        if kids:
            decision_text, child = f"already continued by {', '.join(kids)}", kids[-1]
        elif not backend.of(submission).recovers:
            decision_text, child = "not recovered: a debugging run (orch submit --debug) is run again by hand", None
        else:
            try:
                policy = self.policy(paths, submission)
                decision = decide(state, submission.get("attempt", 1), submission["request"]["mem_gb"],
                                  record.get("max_rss_bytes"), policy)
                decision_text, child = decision.reason, None
                if decision.resubmit:
                    from orchestrator.launch.submit import (
                        resubmit,  # the submit path loads the data scan
                    )

                    job_ids = resubmit(self.root, paths.job_id, decision.mem_gb)
                    child = job_ids[0]
                    self.report.changes.append(f"{paths.job_id}: {decision.reason}: new attempt {child}")
            except OrchError as exc:
                kids = attempts.children(paths)
                if kids:  # another command (orch resubmit) made it meanwhile
                    decision_text, child = f"continued by another command: {', '.join(kids)}", kids[-1]
                elif paths.next_attempt.exists():  # and is still at it (or died): decided on a later tick
                    self.report.problems.append(f"{paths.job_id}: recovery waits for the command making its next "
                                                f"attempt ({exc}); if that command died, its maker or the job's owner "
                                                f"removes {paths.next_attempt}")
                    return record
                else:
                    decision_text, child = f"recovery failed: {exc}", None
                    self.report.problems.append(f"{paths.job_id}: {decision_text}")
        if state is JobState.FAILED and paths.run.exists():
            record["job_reason"] = (read_optional_record(paths.run) or {}).get("reason")
        return self.settle(paths, record, decision_text, child)

    def settle(self, paths: JobPaths, record: dict[str, Any], decision: str, child: str | None = None) -> dict[str, Any]:
        """Record the recovery decision of an ended job (or search); it is then never looked at again."""
        record["recovery"] = {"decision": decision, "child_job_id": child, "decided_at": iso(self.clock())}
        record["changed_at"] = iso(self.clock())
        if paths.job_id not in self.report.changed:
            self.report.changed.append(paths.job_id)
        self.report.decisions.append(f"{paths.job_id}: {record['state']}: {decision}")
        save_scheduler_record(paths, record)
        return record

    def policy(self, paths: JobPaths, submission: dict[str, Any]) -> Policy:
        """The recovery policy of the config the job was submitted with (a config.json changed since is
        refused)."""
        config = load_config(paths.config, submitted=attempts.submitted_config(submission))
        profile = load_profile(config.resources.site)
        return Policy(config.recovery.max_attempts or profile.max_attempts,
                      config.recovery.memory_factor or profile.memory_factor, profile.max_mem_gb)


def sync(root: Path, budget_s: float = 120.0) -> Report:
    """Run one tick unless another holds the lock."""
    lock = Lock(root)
    try:
        if not lock.acquire():
            return Report(skipped="another orch sync is running on this registry")
        return Tick(root, budget_s).run()
    finally:
        lock.release()
