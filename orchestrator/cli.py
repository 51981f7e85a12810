"""The ``orch`` command line. Errors print one line to stderr; ``--debug`` shows the traceback.

Exit codes: 0 ok, 2 invalid input, 1 scheduler or system failure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable

from orchestrator import __version__
from orchestrator.errors import InputError, OrchError

Handler = Callable[[argparse.Namespace], int]


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
    p.add_argument("--wait", action="store_true", help="follow the job until it ends")
    p.add_argument("--poll-s", type=float, default=10.0, help="seconds between checks with --wait on SLURM")
    p.set_defaults(handler=cmd_submit)

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
    from orchestrator.registry import resolve_root
    from orchestrator.submit import plan

    p = plan(args.config, resolve_root(args.registry))
    for line in describe_plan(p, notes=args.notes):
        print(line)
    print("valid")
    return 0


def describe_plan(p: "Plan", notes: bool = False) -> list[str]:  # noqa: F821 (lazy import)
    from orchestrator.config import parent_path
    from orchestrator.sbatch import format_time
    from orchestrator.scan import format_table

    c = p.config
    parent = parent_path(c)
    m = c.model
    lines = [f"config   {c.path}",
             f"name     {c.name} v{c.version}" + (f" (parent: {parent.name})" if parent else " (first version)"),
             f"task     {c.task}, model {c.model_name}, {m.hp_max_evals} trials, objective {m.objective}, "
             f"{m.epochs} epochs max" + (f", early stopping on {m.early_stopping.monitor} (patience "
                                          f"{m.early_stopping.patience})" if m.early_stopping else ""),
             f"planes   {', '.join(c.planes)}" + (f" (job array {p.request.array})" if p.request.array else ""),
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


def cmd_submit(args: argparse.Namespace) -> int:
    from orchestrator import slurm
    from orchestrator.registry import resolve_root
    from orchestrator.submit import plan, submit

    p = plan(args.config, resolve_root(args.registry))
    use_local = args.local or not slurm.available()
    if args.dry_run:
        for line in describe_plan(p):
            print(line)
        print(f"would submit to {'the local executor' if use_local else 'SLURM'} with registry {p.root}:")
        print(p.script, end="")
        return 0
    job_ids, runner = submit(p, use_local)
    where = "local executor" if use_local else "SLURM"
    print(f"submitted {p.config.label} to {where}: {' '.join(job_ids)}")
    print(f"registry {p.root / 'jobs'}")
    if not args.wait:
        return 0
    if runner is not None:
        code = runner.wait()
        print(f"{' '.join(job_ids)} ended with exit code {code}")
        return 0 if code == 0 else 1
    base = job_ids[0].split("_")[0]
    while slurm.run_squeue_states(base):
        time.sleep(args.poll_s)
    print(f"{base} has left the queue")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from orchestrator.config import load_config
    from orchestrator.lineage import diff_report, parent_of

    if len(args.configs) > 2:
        raise InputError("orch diff", "expected one config (diffed against its parent) or two")
    configs = [load_config(path, resolve_paths=False) for path in args.configs]
    old, new = (parent_of(configs[0]), configs[0]) if len(configs) == 1 else configs
    for line in diff_report(old, new):
        print(line)
    return 0


def cmd_demo_data(args: argparse.Namespace) -> int:
    from orchestrator.synthetic import generate

    files = generate(Path(args.directory), files_per_production=args.files, samples_per_file=args.samples,
                     seed=args.seed)
    print(f"wrote {len(files)} files under {Path(args.directory).resolve()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.handler(args)
    except OrchError as exc:
        if args.debug:
            raise
        print(f"orch: error: {exc}", file=sys.stderr)
        for note in getattr(exc, "__notes__", []):
            print(f"orch: {note}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("orch: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        if args.debug:
            raise
        print(f"orch: error: {exc}", file=sys.stderr)
        return 1
