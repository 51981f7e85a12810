"""Site profiles: what a cluster needs in every batch script (``<site>.yaml``).

A profile is trusted admin content: its ``setup`` lines are shell and go into the
script verbatim. Config values never do (see ``orchestrator.launch.sbatch``).
Profiles are looked for in the folders of ``profile_dirs``, first match wins.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from orchestrator.core.config import NAME_RE, SLURM_TOKEN_RE
from orchestrator.core.config_file import parse_time_min
from orchestrator.core.errors import InputError
from orchestrator.core.fields import Section, int_at_least, is_number, optional, string
from orchestrator.core.registry import user_config, user_config_path

CHECKOUT = Path(__file__).resolve().parents[2]  # the source checkout, when orch runs from one
INSTALLED = ("share", "orch", "slurm_templates")  # where setup.cfg's data_files puts them, below the prefix


@dataclass(frozen=True)
class SiteProfile:
    name: str
    path: Path
    partition: str | None
    account: str | None
    qos: str | None
    constraint: str | None
    default_timeout_min: int
    default_cpus_per_task: int
    gpu_gres: str
    max_mem_gb: float | None
    signal_before_limit_s: int
    python: str
    setup: tuple[str, ...]
    max_attempts: int
    memory_factor: float


def shipped_dir() -> Path | None:
    """The profiles shipped with orch: the checkout's ``slurm_templates/`` when orch runs from a source
    checkout (``pip install -e`` or ``PYTHONPATH``), else the copy the ``orch`` distribution installed
    (``<prefix>/share/orch/slurm_templates``, found through its recorded files whatever the prefix);
    None when there is neither."""
    if (CHECKOUT / "setup.cfg").is_file() and (CHECKOUT / "slurm_templates").is_dir():
        return CHECKOUT / "slurm_templates"
    try:
        files = importlib.metadata.files("orch") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    profile = next((f for f in files if f.parts[-4:-1] == INSTALLED and f.suffix == ".yaml"), None)
    return Path(profile.locate()).resolve().parent if profile else None


def profile_dirs() -> list[Path]:
    """The folders site profiles are looked for in, in order: ``ORCH_SITE_DIR`` (one an admin adds), the
    user config's ``site_dir``, then the shipped profiles (``shipped_dir``). A folder named by either
    setting that does not exist is an error, so that a typo never falls back to another profile."""
    named = [("ORCH_SITE_DIR", os.environ.get("ORCH_SITE_DIR")),
             (f"{user_config_path()}: site_dir", user_config().get("site_dir"))]
    dirs: list[Path] = []
    for where, value in named:
        if value:
            folder = Path(os.path.expanduser(value))
            if not folder.is_dir():
                raise InputError(where, f"{folder} is not a folder; expected a folder of site profiles")
            dirs.append(folder)
    shipped = shipped_dir()
    return [*dirs, shipped] if shipped else dirs


def load_profile(name: str) -> SiteProfile:
    """Load and validate the site profile ``name``: ``<name>.yaml`` in the first of ``profile_dirs``
    that has one; when none has, the error lists the profiles of them all."""
    if not NAME_RE.fullmatch(name):
        raise InputError(f"site {name!r}", "not a valid site profile name")
    dirs = profile_dirs()
    path = next((d / f"{name}.yaml" for d in dirs if (d / f"{name}.yaml").is_file()), None)
    if path is None:
        known = sorted({p.stem for d in dirs for p in d.glob("*.yaml") if NAME_RE.fullmatch(p.stem)})
        raise InputError(", ".join(map(str, dirs)) or "site profiles",
                         f"no site profile {name!r}; known: {', '.join(known) or 'none'}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(str(path), f"cannot read site profile: {exc}") from None
    sec = Section(data, "", str(path))
    token = optional(lambda v: isinstance(v, str) and SLURM_TOKEN_RE.fullmatch(v) is not None)
    words = "a SLURM name or null"
    python = sec.take("python", optional(lambda v: string(v) and os.path.isabs(v)), "an absolute path or null",
                      None)
    time = sec.take("default_time", lambda v: isinstance(v, str), "a SLURM time such as \"12:00:00\"", "12:00:00")
    try:
        timeout_min = parse_time_min(time)
    except ValueError:
        sec.fail(f"{time!r} is not a SLURM time", "default_time")
    profile = SiteProfile(
        name=name, path=path,
        partition=sec.take("partition", token, words, None), account=sec.take("account", token, words, None),
        qos=sec.take("qos", token, words, None), constraint=sec.take("constraint", token, words, None),
        default_timeout_min=timeout_min,
        default_cpus_per_task=sec.take("default_cpus_per_task", int_at_least(1), "an integer ≥ 1", 2),
        gpu_gres=sec.take("gpu_gres", lambda v: string(v) and "{n}" in v and SLURM_TOKEN_RE.fullmatch(
            v.replace("{n}", "1")) is not None, "a gres with {n}, e.g. \"gpu:{n}\"", "gpu:{n}"),
        max_mem_gb=sec.take("max_mem_gb", optional(lambda v: is_number(v) and v > 0), "a number > 0 or null",
                            None),
        signal_before_limit_s=sec.take("signal_before_limit_s", int_at_least(0), "an integer ≥ 0", 120),
        python=python or sys.executable,
        setup=tuple(sec.take("setup", lambda v: isinstance(v, list) and all(isinstance(x, str) and "\n" not in x
                                                                            for x in v),
                             "a list of single-line shell commands", [])),
        max_attempts=sec.take("recovery_max_attempts", int_at_least(1), "an integer ≥ 1", 3),
        memory_factor=sec.take("recovery_memory_factor", lambda v: is_number(v) and v > 1, "a number > 1", 1.5),
    )
    sec.finish()
    return profile
