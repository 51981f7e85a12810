"""orch installed from a wheel (not ``pip install -e``) finds its shipped site profiles.

The wheel is built from a copy of the repository's sources and installed without its dependencies into a
fresh venv; a ``.pth`` file lends that venv this interpreter's library folders (numpy, PyYAML, ...), all
but those holding an ``orchestrator`` package, so that the one it imports is the wheel's. Nothing is
downloaded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO

SOURCES = ("pyproject.toml", "setup.cfg", "README.md", "orchestrator", "jobs", "slurm_templates")
PROBE = """
import json, orchestrator
from orchestrator.launch.site import load_profile
print(json.dumps({"package": orchestrator.__file__, "profile": str(load_profile("default").path)}))
"""


def run(argv: list[str | Path], cwd: Path, env: dict[str, str]) -> str:
    """Run ``argv`` in ``cwd``; its stdout, after asserting that it succeeded."""
    result = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{argv} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def lent_paths() -> list[str]:
    """This interpreter's library folders, but none holding an ``orchestrator`` package (the checkout)."""
    return [p for p in dict.fromkeys(sys.path)
            if p and os.path.isdir(p) and not os.path.exists(os.path.join(p, "orchestrator"))]


def test_a_wheel_installed_into_a_fresh_venv_finds_its_profile_and_submits_the_demo(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith(("ORCH_", "PIP_"))}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")  # no user config: its site_dir would come first
    source = tmp_path / "source"  # a copy: the build writes build/ and *.egg-info beside its sources
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", tmp_path / "dist", source],
        tmp_path, env)
    wheel, = (tmp_path / "dist").glob("orch-*.whl")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path, env)
    python = venv / "bin" / "python"
    # installed before the .pth exists, so pip sees only the fresh venv (never this one's orch)
    run([*pip, "--python", python, "install", "--no-deps", "--no-index", wheel], tmp_path, env)
    site_packages = run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], tmp_path, env)
    (Path(site_packages.strip()) / "lent.pth").write_text("\n".join(lent_paths()) + "\n")

    probe = json.loads(run([python, "-c", PROBE], tmp_path, env))
    assert Path(probe["package"]).resolve().is_relative_to(venv.resolve()), probe  # the wheel's, not the checkout
    assert Path(probe["profile"]).resolve() == (venv / "share" / "orch" / "slurm_templates" / "default.yaml"
                                                ).resolve()

    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    demo = repo / "json" / "demo" / "demo.json"
    demo.parent.mkdir(parents=True)
    shutil.copyfile(REPO / "json" / "demo" / "demo.json", demo)
    orch = venv / "bin" / "orch"
    run([orch, "demo-data", "--files", "3", "--samples", "60", repo / "demo-data"], tmp_path, env)
    out = run([orch, "--registry", tmp_path / "registry", "submit", "--dry-run", demo], tmp_path, env)
    assert "\n# orch: demo_v1, site profile default\n" in out, out
    assert f"\nexec {python} -m jobs.mt_identifier " in out, out  # the profile names no python: orch's own
    assert not (tmp_path / "registry").exists()
