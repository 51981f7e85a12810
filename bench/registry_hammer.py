"""A registry under load and random ``kill -9``s: does any acknowledged update get lost, any file become
unparsable, any job get two attempts, any reader fail?

Eight writer processes make 500 updates each on one real registry, with orch's own writers: trial
lines appended to the writer's own job (``append_json_line``), its ``run.json`` and its
``scheduler.json`` rewritten (``write_json_atomic``), the index saved under the sync lock, and
attempts of four shared ended jobs made the way ``orch resubmit`` and sync's recovery decide them
(``attempts.reserve_next``, then the child's marker). Each writer notes an update in a ledger of its
own only after orch's call returned. Two readers meanwhile run what ``orch status`` runs (the table
and a job's page). A killer sends ``SIGKILL`` to a random writer every 0.02-0.2 s; a killed writer is
started again and goes on from its ledger. Baseline in the same run: the same updates without kills.

    python bench/registry_hammer.py [--writers 8] [--updates 500] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from orchestrator.core import attempts, index
from orchestrator.core.errors import OrchError
from orchestrator.core.files import append_json_line, write_json_atomic
from orchestrator.core.records import numbered_json_lines, read_json
from orchestrator.core.registry import JobPaths, create_entry
from orchestrator.track import status
from orchestrator.track.sync import Lock, row

PARENTS = [str(900 + n) for n in range(4)]  # ended jobs every writer tries to continue
SUBMISSION = {"scheduler": "slurm", "submitted_at": "2026-12-01T00:00:00+00:00", "request": {"mem_gb": 8},
              "attempt": 1, "config": {"label": "hammer_v1", "name": "hammer"}, "estimate": {"peak_gb": 6}}


def job_of(writer: int) -> str:
    return str(100 + writer)


def make_registry(root: Path, writers: int) -> None:
    for job_id in [job_of(w) for w in range(writers)] + PARENTS:
        paths = create_entry(root, job_id, {"submission.json": json.dumps(SUBMISSION),
                                            "config.json": json.dumps({"model_parameters": {"hp_max_evals": 25}})})
        if job_id in PARENTS:
            write_json_atomic(paths.scheduler, {"state": "OUT_OF_MEMORY", "reason": "", "max_rss_bytes": 1})


def ledger(root: Path, writer: int) -> Path:
    return root.parent / f"ledger.{writer}.jsonl"


def done_so_far(root: Path, writer: int) -> int:
    return sum(1 for _ in numbered_json_lines(ledger(root, writer)))


def write(root: Path, writer: int, updates: int, seed: int) -> None:
    """One writer: its remaining updates, each noted in its ledger once orch's call returned."""
    rng = random.Random(seed * 1000 + writer)
    paths = JobPaths(root, job_of(writer))
    for n in range(done_so_far(root, writer), updates):
        kind = rng.choice(["trial", "trial", "trial", "run", "scheduler", "index", "attempt"])
        note: dict[str, Any] = {"n": n, "kind": kind}
        if kind == "trial":
            append_json_line(paths.trials, {"trial": n, "job_id": paths.job_id, "status": "ok", "loss": rng.random()})
        elif kind == "run":
            write_json_atomic(paths.run, {"update": n, "status": "running", "started_at": "2026-12-01T00:00:00+00:00"})
        elif kind == "scheduler":  # as sync writes it
            write_json_atomic(paths.scheduler, {"update": n, "state": "RUNNING", "reason": "", "source": "sacct",
                                                "max_rss_bytes": None})
        elif kind == "index":
            lock = Lock(root)
            try:
                if lock.acquire():
                    record = {"state": "RUNNING", "update": n}
                    index.save(root, {**index.load(root), paths.job_id: row(paths, SUBMISSION, record)}, "now")
                else:
                    note["kind"] = "index busy"
            finally:
                lock.release()
        else:
            parent = JobPaths(root, rng.choice(PARENTS))
            child = f"{parent.job_id}{writer}{n:04d}"
            try:
                attempts.reserve_next(parent, {"user": f"w{writer}", "host": "h", "pid": os.getpid(),
                                               "reserved_at": "now"})
                attempts.mark_child(parent, child)
                note.update(parent=parent.job_id, child=child)
            except OrchError:
                note["kind"] = "attempt refused"
        append_json_line(ledger(root, writer), note)


def writer_main(root: str, writer: int, updates: int, seed: int) -> None:
    try:
        write(Path(root), writer, updates, seed)
    except Exception:
        traceback.print_exc()
        os._exit(1)


def read(root: Path, stop: Any, errors: Any) -> None:
    """One reader: what orch status reads, over and over, until told to stop."""
    while not stop.is_set():
        try:
            rows = status.job_rows(root)
            for row in rows[:3]:
                status.format_job(status.job_view(root, row["job_id"]))
        except Exception as exc:
            errors.put(f"{type(exc).__name__}: {exc}")


def run(writers: int, updates: int, seed: int, kills: bool) -> dict[str, Any]:
    context = multiprocessing.get_context("fork")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "registry"
        make_registry(root, writers)
        stop, errors = context.Event(), context.SimpleQueue()
        readers = [context.Process(target=read, args=(root, stop, errors)) for _ in range(2)]
        for reader in readers:
            reader.start()
        procs = {w: context.Process(target=writer_main, args=(str(root), w, updates, seed)) for w in range(writers)}
        for proc in procs.values():
            proc.start()
        rng, killed, started = random.Random(seed), 0, time.monotonic()
        while any(p.is_alive() for p in procs.values()):
            time.sleep(rng.uniform(0.02, 0.2))
            alive = [w for w, p in procs.items() if p.is_alive()]
            if kills and alive:
                victim = rng.choice(alive)
                os.kill(procs[victim].pid, signal.SIGKILL)
                procs[victim].join()
                killed += 1
                procs[victim] = context.Process(target=writer_main, args=(str(root), victim, updates, seed))
                procs[victim].start()
        wall = time.monotonic() - started
        stop.set()
        for reader in readers:
            reader.join()
        reader_errors = []
        while not errors.empty():
            reader_errors.append(errors.get())
        failed = [w for w, p in procs.items() if p.exitcode != 0]
        return {"wall_s": wall, "kills": killed, "failed_writers": failed, "reader_errors": reader_errors,
                **check(root, writers)}


def check(root: Path, writers: int) -> dict[str, Any]:
    """Lost updates, unparsable files and attempts per job, from the ledgers and the registry."""
    lost = 0
    for w in range(writers):
        paths = JobPaths(root, job_of(w))
        notes = [r for _, r in numbered_json_lines(ledger(root, w))]
        trials = {r["trial"] for _, r in numbered_json_lines(paths.trials)}
        lost += sum(1 for r in notes if r["kind"] == "trial" and r["n"] not in trials)
        for kind, path in (("run", paths.run), ("scheduler", paths.scheduler)):
            acked = [r["n"] for r in notes if r["kind"] == kind]
            if acked and (not path.exists() or read_json(path)["update"] < max(acked)):
                lost += 1
        for r in notes:
            if r["kind"] == "attempt" and r["child"] not in attempts.children(JobPaths(root, r["parent"])):
                lost += 1
    unparsable = leftovers = 0
    for path in root.rglob("*"):
        if path.name.startswith("."):  # an interrupted write's temporary file: never read, swept by sync
            leftovers += path.is_file()
        elif path.is_file() and path.suffix == ".json":
            try:
                read_json(path)
            except OrchError:
                unparsable += 1
        elif path.is_file() and path.suffix == ".jsonl":
            text = path.read_bytes()
            lines = text.split(b"\n")
            unparsable += sum(1 for line in lines[:-1] if line.strip() and not _parses(line)) + (lines[-1] != b"")
    return {"lost_updates": lost, "unparsable": unparsable, "leftovers": leftovers,
            "attempts_per_job": [len(attempts.children(JobPaths(root, p))) for p in PARENTS]}


def _parses(line: bytes) -> bool:
    try:
        json.loads(line)
        return True
    except ValueError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--updates", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"{args.writers} writers x {args.updates} updates, 2 readers", flush=True)
    for label, kills in (("without kills (baseline)", False), ("with random kill -9", True)):
        result = run(args.writers, args.updates, args.seed, kills)
        print(f"{label:26s} {result['wall_s']:6.1f} s  kills {result['kills']:3d}  "
              f"lost updates {result['lost_updates']}  unparsable files {result['unparsable']}  "
              f"attempts per job {result['attempts_per_job']}  reader errors {len(result['reader_errors'])}  "
              f"failed writers {result['failed_writers']}  temporary files left {result['leftovers']}", flush=True)
        for error in result["reader_errors"][:5]:
            print(f"    reader error: {error}")
    sys.exit(0)


if __name__ == "__main__":
    main()
