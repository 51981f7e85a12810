"""What one worker sees of its search and how it takes its next trial (``orchestrator.core.claims``).

Trial ``n`` is *recorded* when a member of the search has a record for it, *running*
while its current claim has no record, *free* while nobody claimed it. A worker takes,
in trial order, the first trial that is free, released, claimed by this job or an
attempt it continues (a requeue or a retry picks up its own cut-off trial), recorded
as lost to the resources of such an attempt (killed for memory: run again with more),
or claimed by a worker that is gone: heartbeat older than ``heartbeat_limit_s`` and
the scheduler no longer running it. A worker that finds nothing to take while trials
still run elsewhere waits, so that a trial whose worker dies late is still taken over;
the search is over when every trial is recorded.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from orchestrator.core import attempts, claims, jobenv, slurm
from orchestrator.core.claims import Claim
from orchestrator.core.errors import SchedulerError
from orchestrator.core.records import LineTails, read_json
from orchestrator.core.registry import JobPaths


@dataclass
class Snapshot:
    """The search as one worker read it: the record counting for each trial, the current claims."""

    records: dict[int, dict[str, Any]]
    claims: dict[str, Claim]


@dataclass
class Taken:
    """A trial just claimed: the claim, the request of the claim it took over (whose point is kept),
    if any, and the snapshot the decision was made on (the history for the proposal)."""

    claim: Claim
    previous: dict[str, Any] | None
    view: Snapshot


def holder_gone(owner: dict[str, Any]) -> bool:
    """Whether the worker named in a claim no longer runs: on this host, its process (pid and start
    time, so never a reused pid) is gone; elsewhere, ``squeue`` no longer lists its job. A holder that
    cannot be checked (a local job on another host, no ``squeue`` on this node, a claim of an older
    orch without the start time) is judged by its heartbeat alone; a scheduler that fails to answer
    this time says nothing, and the claim is looked at again later."""
    job_id = owner.get("job_id")
    if not job_id:
        return True
    if owner.get("host") == socket.gethostname():
        return not jobenv.still_runs(int(owner.get("pid") or 0), owner.get("started"))
    try:
        return not slurm.run_squeue_states(job_id)
    except SchedulerError as exc:  # a local job's ID is no SLURM job's: squeue calls it invalid
        message = str(exc).lower()
        return "invalid job id" in message or "command not found" in message


class Coordinator:
    """One worker's view of its search: snapshots, the next trial to take, pending points, the final."""

    def __init__(self, paths: JobPaths, total: int, heartbeat_limit_s: float,
                 gone: Callable[[dict[str, Any]], bool] = holder_gone) -> None:
        self.paths = paths
        self.search = attempts.search_of(paths)
        self.total = total
        self.limit_s = heartbeat_limit_s
        self.gone = gone
        self.mine = {p.job_id for p in attempts.chain(paths)}  # this job and the attempts it continues
        self.owner = {"job_id": paths.job_id, "host": socket.gethostname(), "pid": os.getpid(),
                      "started": jobenv.process_start(os.getpid())}
        self.tails = LineTails()  # every member's trials.jsonl, read as it grows
        self.requests: dict[tuple[str, int], dict[str, Any]] = {}  # (key, generation) → its holder's request

    @property
    def claims_dir(self) -> Path:
        return self.search.claims

    def snapshot(self) -> Snapshot:
        """Every member's records (the counting one per trial) and the current claims."""
        records = attempts.counting([r for m in attempts.members_with(self.paths) for r in self.tails.read(m.trials)])
        return Snapshot({r["trial"]: r for r in records}, claims.current(self.claims_dir))

    def _rerun(self, record: dict[str, Any]) -> bool:
        """A record of an earlier attempt of this worker that lost the trial to its resources, while the
        search's final step has not been taken (after it, the result stands)."""
        return (record.get("failure") == "resource" and record["job_id"] in self.mine - {self.paths.job_id}
                and claims.FINAL not in claims.current(self.claims_dir))

    def _takeable(self, claim: Claim | None) -> bool:
        if claim is None:
            return True
        owner = claim.owner()
        if owner.get("released_at"):
            return True
        if owner.get("job_id") in self.mine:  # cut off in an earlier run of this job, or an earlier attempt
            return (owner.get("host"), owner.get("pid")) != (self.owner["host"], self.owner["pid"])
        return claim.heartbeat_age_s() > self.limit_s and self.gone(owner)

    def take(self, when: str) -> Taken | None:
        """Claim the next trial; None when nothing can be taken now."""
        while True:
            view = self.snapshot()
            raced = False
            for n in range(self.total):
                record, claim = view.records.get(n), view.claims.get(claims.trial_key(n))
                if record is not None and not self._rerun(record):
                    continue
                if record is None and not self._takeable(claim):
                    continue
                generation = max(-1 if claim is None else claim.generation,
                                 -1 if record is None else record.get("claim_generation", 0)) + 1
                won = claims.create(self.claims_dir, claims.trial_key(n), generation,
                                    {**self.owner, "claimed_at": when})
                if won is not None:
                    return Taken(won, None if claim is None else self.request_of(claim), view)
                raced = True  # another worker was faster: try the next one, then look again
            if not raced:
                return None

    def finished(self, view: Snapshot) -> bool:
        """Every trial recorded (none left for this worker to run again)."""
        return all(n in view.records and not self._rerun(view.records[n]) for n in range(self.total))

    def request_of(self, claim: Claim) -> dict[str, Any] | None:
        """The trial request (point and raw values) the holder of ``claim`` wrote, if any."""
        if (claim.key, claim.generation) in self.requests:
            return self.requests[claim.key, claim.generation]
        job_id = claim.owner().get("job_id")
        if not job_id or claim.trial is None:
            return None
        try:
            path = JobPaths(self.search.root, job_id).request(claim.trial)
            request = read_json(path) if path.exists() else None
        except Exception:  # a torn or foreign file gives no point; the trial gets a new one
            return None
        if not (isinstance(request, dict) and "vals" in request):
            return None
        self.requests[claim.key, claim.generation] = request  # written once, before the trial starts
        return request

    def pending(self, view: Snapshot) -> list[tuple[int, dict[str, Any]]]:
        """(trial, raw values) of the trials running elsewhere whose point is known."""
        out = []
        for n, owner in sorted(claims.running(view.claims, set(view.records)).items()):
            claim = view.claims.get(claims.trial_key(n))
            request = self.request_of(claim) if claim is not None and owner["job_id"] != self.paths.job_id else None
            if request is not None and n < self.total:
                out.append((n, request["vals"]))
        return out

    def final_open(self) -> bool:
        """Whether the final step is still to be taken: no result yet, and its claim takeable."""
        return (attempts.search_result(self.search) is None
                and self._takeable(claims.current(self.claims_dir).get(claims.FINAL)))

    def take_final(self, when: str) -> Claim | None:
        """Claim the final step; None when another worker holds it or the search has its result."""
        if not self.final_open():
            return None
        claim = claims.current(self.claims_dir).get(claims.FINAL)
        return claims.create(self.claims_dir, claims.FINAL, 0 if claim is None else claim.generation + 1,
                             {**self.owner, "claimed_at": when})

    def release(self, claim: Claim, when: str) -> None:
        claims.release(claim, self.owner, when)


def beat_interval_s(heartbeat_limit_s: float) -> float:
    """How often a holder touches its claim (and a waiting worker looks again): a tenth of the limit,
    between 0.5 and 10 s."""
    return min(10.0, max(0.5, heartbeat_limit_s / 10))


class Heartbeat:
    """While a claim is held: touch it every ``interval_s``; call ``on_lost`` if a newer generation
    appears (the claim was taken over: this worker was thought dead)."""

    def __init__(self, claim: Claim, interval_s: float, on_lost: Callable[[], None]) -> None:
        self.claim, self.interval_s, self.on_lost = claim, interval_s, on_lost
        self.stopped = threading.Event()
        self.lost = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()

    def _run(self) -> None:
        while not self.stopped.wait(self.interval_s):
            taken_over = claims.Claim(self.claim.key, self.claim.generation + 1, self.claim.folder)
            if taken_over.path.exists():  # a takeover always creates the next generation
                self.lost = True
                self.on_lost()
                return
            try:
                claims.beat(self.claim)
            except OSError:
                pass  # a missed beat only makes the claim look older
