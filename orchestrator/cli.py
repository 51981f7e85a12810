"""The ``orch`` command line. Errors print one line to stderr; ``--debug`` shows the traceback.

Exit codes: 0 ok, 2 invalid input, 1 scheduler or system failure.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Callable

from orchestrator import __version__
from orchestrator.core.errors import InputError, OrchError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orch", description="Versioned configs → validated SLURM submissions "
                                     "of hyperopt searches, tracked in a shared registry.")
    parser.add_argument("--version", action="version", version=f"orch {__version__}")
    parser.add_argument("--registry", metavar="DIR", help="registry root (default: $ORCH_REGISTRY, "
                        "~/.config/orch/config.yaml, ./registry)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check a config and its data; print the plan")
    p.add_argument("config", help="a JSON config file")
    p.add_argument("--notes", action="store_true", help="also print training_notes and metadata in full")
    p.set_defaults(handler=cmd_validate)

    p = sub.add_parser("submit", help="validate, then submit to SLURM (or the local executor)")
    p.add_argument("config", help="a JSON config file")
    p.add_argument("--dry-run", action="store_true", help="print the plan and the script; write nothing")
    p.add_argument("--local", action="store_true", help="run on this machine even if SLURM is here")
    p.add_argument("--wait", action="store_true", help="follow the search until it ends: each trial, then a summary")
    p.add_argument("--poll-s", type=float, default=10.0, help="seconds between checks with --wait on SLURM")
    p.add_argument("--debug", dest="in_process", action="store_true",
                   help="run the job in this process (trials too), into the debugger at the first exception")
    p.add_argument("--trials", type=int, default=0, metavar="K", help="with --debug: run at most K trials")
    p.set_defaults(handler=cmd_submit)

    p = sub.add_parser("status", help="a job's state, trials and results from the registry, or a table of jobs")
    p.add_argument("job_id", nargs="?", help="a job ID (17832069, 17832069_2, local-...); none: a table")
    p.add_argument("--config", help="only jobs of this config name (or name_vN)")
    p.add_argument("--state", help="only jobs in these states (comma-separated, e.g. RUNNING,PENDING)")
    p.add_argument("--since", help="only jobs submitted since: 7d, 12h, 30m or a date")
    p.add_argument("--all", action="store_true", help="every job (default: the 20 newest)")
    p.add_argument("--workers", action="store_true", help="also a row for each worker of a search of several")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_status)

    p = sub.add_parser("sync", help="one tick: scheduler state into the registry, recovery of ended jobs")
    p.add_argument("--quiet", action="store_true", help="print only changes and problems (for cron)")
    p.add_argument("--verbose", action="store_true", help="also print every decision")
    p.add_argument("--budget-s", type=float, default=120.0, help="time budget of the tick")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_sync)

    p = sub.add_parser("cancel", help="cancel a job (orch sync then records CANCELLED; it is not retried)")
    p.add_argument("job_id")
    p.set_defaults(handler=cmd_cancel)

    p = sub.add_parser("resubmit", help="a new attempt of an ended job that resumes its search")
    p.add_argument("job_id")
    p.add_argument("--mem", metavar="SIZE", help="memory for the new attempt, e.g. 32G or 512M")
    p.set_defaults(handler=cmd_resubmit)

    p = sub.add_parser("cron", help="the crontab line for orch sync: print it, or install it")
    p.add_argument("action", choices=["print", "install"])
    p.add_argument("--every-min", type=int, default=5, help="minutes between ticks")
    p.set_defaults(handler=cmd_cron)

    p = sub.add_parser("report", help="an HTML and a Markdown report of a job, beside its artifacts")
    p.add_argument("job_id")
    p.set_defaults(handler=cmd_report)

    p = sub.add_parser("compare", help="a table of versions (or jobs): trials, best, metrics, memory, changes")
    p.add_argument("targets", nargs="+", metavar="TARGET", help="config name (all its versions), name_vN, or job ID")
    p.add_argument("--html", metavar="FILE", help="also write an HTML page with the table and a plot")
    p.add_argument("--json", action="store_true", help="machine-readable output instead of Markdown")
    p.set_defaults(handler=cmd_compare)

    p = sub.add_parser("overview", help="one HTML page of every search in the registry (makes missing reports)")
    p.add_argument("--html", metavar="FILE", help="write the page here (default: <registry>/index/overview.html)")
    p.set_defaults(handler=cmd_overview)

    p = sub.add_parser("diff", help="what changed between two configs (or one and its parent)")
    p.add_argument("configs", nargs="+", metavar="CONFIG", help="NEW (against its parent) or OLD NEW")
    p.set_defaults(handler=cmd_diff)

    p = sub.add_parser("demo-data", help="write the synthetic per-plane NPZ data set")
    p.add_argument("directory", help="where to write es/ and cc/")
    p.add_argument("--files", type=int, default=10, help="files per production and plane")
    p.add_argument("--samples", type=int, default=250, help="mean samples per file")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=cmd_demo_data)
    return parser


def cmd_validate(args: argparse.Namespace) -> int:
    from orchestrator.launch.plan import describe, plan

    p = plan(args.config, _registry_root(args, new_ok=True))
    for line in describe(p, notes=args.notes):
        print(line)
    print("valid")
    return 0


def _registry_root(args: argparse.Namespace, new_ok: bool = False) -> Path:
    from orchestrator.core.registry import existing_root, resolve_root

    return existing_root(resolve_root(args.registry), new_ok)


def cmd_submit(args: argparse.Namespace) -> int:
    from orchestrator.launch.plan import describe, plan
    from orchestrator.launch.submit import submit
    from orchestrator.scheduler.backend import for_submit

    _seconds("--poll-s", args.poll_s)
    if args.trials < 0 or (args.trials and not args.in_process):
        raise InputError("--trials", f"{args.trials}: expected a number of trials from 1, with --debug")
    p = plan(args.config, _registry_root(args, new_ok=True))
    backend = for_submit(args.local, args.trials if args.in_process else None)
    if args.dry_run:
        for line in describe(p):
            print(line)
        print(f"would submit to {backend.title} with registry {p.root}:")
        print(p.script, end="")
        return 0
    job_ids = submit(p, backend)
    print(f"submitted {p.config.label} to {backend.title}: {' '.join(job_ids)}")
    print(f"registry {p.root / 'jobs'}")
    backend.run_here()
    if not (args.wait or args.in_process):
        return 0
    from orchestrator.present.follow import follow

    return follow(p.root, job_ids, args.poll_s)


def cmd_status(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from orchestrator.core.registry import JobPaths, validate_job_id
    from orchestrator.track import status

    root = _registry_root(args)
    config = _filled("--config", args.config, "a config name or name_vN")
    states = _filled("--state", args.state, "states such as RUNNING,PENDING")
    since = _filled("--since", args.since, "a duration like 7d, 12h, 30m or a date")
    if args.job_id is not None:
        validate_job_id(args.job_id)  # "" is a mistake, not "no job ID"
        tasks = [] if "_" in args.job_id else status.array_tasks(root, args.job_id)
        if tasks and not JobPaths(root, args.job_id).dir.exists():
            rows = [r for r in status.job_rows(root, workers=True) if r["job_id"] in tasks]
            return _print(args, rows, lambda: status.job_table(rows))
        view = status.job_view(root, args.job_id)
        return _print(args, view, lambda: status.format_job(view))
    now = datetime.now(timezone.utc)
    rows = status.filter_rows(status.job_rows(root, args.workers), config, states.split(",") if states else None,
                              status.parse_since(since, now) if since else None)
    shown = rows if args.all else rows[:20]
    def text() -> list[str]:
        more = [f"({len(rows) - len(shown)} older jobs: --all)"] if len(shown) < len(rows) else []
        return status.job_table(shown) + more
    return _print(args, shown, text)


def _filled(option: str, value: str | None, expected: str) -> str | None:
    """``value`` of ``option`` as given; an empty or blank one is an error (it would filter nothing)."""
    if value is not None and not value.strip():
        raise InputError(option, f"{value!r} is empty; expected {expected}")
    return value


def _print(args: argparse.Namespace, data: object, text: Callable[[], list[str]]) -> int:
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        for line in text():
            print(line)
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from orchestrator.present.overview import after_tick
    from orchestrator.track.sync import sync

    root = _registry_root(args)
    report = sync(root, _seconds("--budget-s", args.budget_s))
    after_tick(root, report)
    if args.json:
        print(json.dumps(report.__dict__, indent=2))
    else:
        if report.skipped and not args.quiet:
            print(f"skipped: {report.skipped}")
        for line in report.changes:
            print(line)
        for line in report.decisions if args.verbose else []:
            print(f"decision: {line}")
        if args.verbose and report.overview:
            print(f"overview page rewritten: {report.overview}")
        if args.verbose or not (args.quiet or report.changes):
            print(f"{report.tracked} jobs tracked, {report.scheduler_calls} scheduler calls")
        for line in report.problems:
            print(f"orch sync: problem: {line}", file=sys.stderr)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from orchestrator.track.cancel import cancel

    print(cancel(_registry_root(args), args.job_id))
    return 0


def cmd_resubmit(args: argparse.Namespace) -> int:
    from orchestrator.core.units import parse_size_gib
    from orchestrator.launch.submit import resubmit

    root = _registry_root(args)
    job_ids = resubmit(root, args.job_id, None if args.mem is None else parse_size_gib(args.mem, "--mem"))
    print(f"submitted a new attempt of {args.job_id}: {' '.join(job_ids)}")
    return 0


def _seconds(option: str, value: float) -> float:
    """``value`` of ``option``, a time in seconds: finite and above 0 (argparse's float takes nan and -1)."""
    if not (math.isfinite(value) and value > 0):
        raise InputError(option, f"{value:g}: expected a number of seconds above 0")
    return value


def cmd_cron(args: argparse.Namespace) -> int:
    from orchestrator.track import cron

    root = _registry_root(args)
    if args.action == "print":
        print(cron.line(root, args.every_min))
    else:
        changed = cron.install(root, args.every_min)
        print("installed: " if changed else "already installed: ", cron.line(root, args.every_min), sep="")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from orchestrator.present.report import write

    html_path, md_path = write(_registry_root(args), args.job_id)
    print(html_path)
    print(md_path)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from orchestrator.core.files import write_text_atomic
    from orchestrator.present import compare

    if not all(target.strip() for target in args.targets):
        raise InputError("orch compare", "an empty TARGET; expected a config name, name_vN or a job ID")
    rows = compare.compare(_registry_root(args), args.targets)
    print(compare.to_json(rows) if args.json else compare.to_markdown(rows), end="")
    if args.html:
        write_text_atomic(Path(args.html).resolve(), compare.to_html(rows))
        print(f"wrote {Path(args.html).resolve()}", file=sys.stderr)
    return 0


def cmd_overview(args: argparse.Namespace) -> int:
    from orchestrator.present.overview import overview

    page, made = overview(_registry_root(args), None if args.html is None else Path(args.html))
    if made:
        print(f"made {len(made)} missing reports of ended searches", file=sys.stderr)
    print(page)
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from orchestrator.core.config_file import load_config
    from orchestrator.present.lineage import diff_report, parent_of

    if len(args.configs) > 2:
        raise InputError("orch diff", "expected one config (diffed against its parent) or two")
    configs = [load_config(path, resolve_paths=False) for path in args.configs]
    old, new = (parent_of(configs[0]), configs[0]) if len(configs) == 1 else configs
    for line in diff_report(old, new):
        print(line)
    return 0


def cmd_demo_data(args: argparse.Namespace) -> int:
    from orchestrator.launch.synthetic import generate

    for option, value in (("--files", args.files), ("--samples", args.samples)):
        if value < 1:
            raise InputError(option, f"{value}: expected a whole number from 1")
    files = generate(Path(args.directory), files_per_production=args.files, samples_per_file=args.samples,
                     seed=args.seed)
    print(f"wrote {len(files)} files under {Path(args.directory).resolve()}")
    return 0


def _one_line(message: object) -> str:
    """``message`` with its control characters escaped (``\\n``), so that an error naming a path with a
    newline stays one line."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in str(message))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.handler(args)
    except OrchError as exc:
        if args.debug:
            raise
        print(f"orch: error: {_one_line(exc)}", file=sys.stderr)
        for note in getattr(exc, "__notes__", []):
            print(f"orch: {_one_line(note)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("orch: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        if args.debug:
            raise
        print(f"orch: error: {_one_line(exc)}", file=sys.stderr)
        return 1
