"""Bad input on a shared registry: names and IDs matched whole, one-line errors for arguments, a registry
that must exist, and a crontab that is never replaced by mistake.

The cases run the real code: the CLI in-process, or ``orchestrator.track.cron`` against a stand-in ``crontab``
first on PATH, so that the real user's crontab is never read or written; one reads the sources for
anchored patterns.
"""

from __future__ import annotations

import ast
import json
import os
import stat
from pathlib import Path
from typing import Callable

import pytest

from orchestrator.cli import main
from orchestrator.core.config_file import parse_time_min
from orchestrator.core.errors import InputError, OrchError
from orchestrator.core.registry import validate_job_id
from orchestrator.core.slurm import expand_array_id
from orchestrator.core.units import parse_size_gib
from orchestrator.track import cron
from tests.helpers import REPO, v4_config

Orch = Callable[..., tuple[int, str, str]]


@pytest.fixture
def registry(workdir: Path) -> Path:
    """An existing, empty registry root."""
    root = workdir / "registry"
    root.mkdir()
    return root


@pytest.fixture
def crontab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Put a stand-in ``crontab`` first on PATH. ``-`` stores stdin in the returned file, which starts
    with two entries of the user's; ``-l`` lists that file, or runs ``list_body`` (a bash snippet)."""
    store = tmp_path / "crontab.txt"
    store.write_text("0 3 * * * /usr/bin/backup\n30 4 * * 1 /usr/bin/report\n")

    def install(list_body: str = f'cat "{store}"') -> Path:
        fake = tmp_path / "bin" / "crontab"
        fake.parent.mkdir(exist_ok=True)
        fake.write_text(f'#!/bin/bash\nif [ "$1" = "-l" ]; then {list_body}\nelse cat > "{store}"; fi\n')
        fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
        monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
        return store

    return install


def one_line_error(code: int, err: str, expected: str) -> None:
    """The CLI's contract for bad input: exit 2, a single ``orch: error:`` line holding ``expected``."""
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("orch: error: "), err
    assert expected in lines[0], err


# 1. names and IDs are matched whole: a trailing newline is not part of a valid name

def test_a_config_name_with_a_trailing_newline_is_refused(write_config: Callable[..., Path], orch: Orch) -> None:
    cfg = v4_config()
    cfg["name"] = "demo\n"
    code, _, err = orch("validate", str(write_config(cfg)))
    one_line_error(code, err, '"demo\\n" is not a usable config name')


@pytest.mark.parametrize("key", ["partition", "account", "qos", "constraint"])
def test_a_slurm_token_with_a_trailing_newline_is_refused(key: str, write_config: Callable[..., Path],
                                                          orch: Orch) -> None:
    cfg = v4_config()
    cfg["resources"] = {key: "gpu\n"}
    code, _, err = orch("validate", str(write_config(cfg)))
    one_line_error(code, err, f"resources.{key}")


def test_a_slurm_time_with_a_trailing_newline_is_not_a_time() -> None:
    with pytest.raises(ValueError, match="not a SLURM time"):
        parse_time_min("12:00:00\n")


@pytest.mark.parametrize("job_id", ["123\n", "123_4\n", "local-20261201T120000-abcdef\n"])
def test_a_job_id_with_a_trailing_newline_is_refused(job_id: str) -> None:
    with pytest.raises(InputError, match="not a job ID"):
        validate_job_id(job_id)


def test_an_array_range_with_a_trailing_newline_is_not_expanded() -> None:
    assert expand_array_id("20_[1-3]") == ["20_1", "20_2", "20_3"]
    assert expand_array_id("20_[1-3]\n") == ["20_[1-3]\n"]


def anchored_patterns() -> list[str]:
    """``file:line pattern`` of every regex literal in orchestrator/ and jobs/ that ends with a ``$`` anchor."""
    found = []
    for path in sorted([*(REPO / "orchestrator").rglob("*.py"), *(REPO / "jobs").glob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "re" and node.args
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
                    and node.args[0].value.endswith("$") and not node.args[0].value.endswith("\\$")):
                found.append(f"{path.relative_to(REPO)}:{node.lineno} {node.args[0].value}")
    return found


def test_no_validating_regex_relies_on_a_dollar_anchor() -> None:
    # "$" also matches before a trailing newline ("demo\n" passed for "demo"), so validators use fullmatch
    assert anchored_patterns() == []


# 2. --mem

@pytest.mark.parametrize("text", ["1" * 401 + "G", "1" * 401, "1" * 401 + "M", "0", "0G", "0.0M", "-1G", "inf",
                                  "nan", "1e3G", "", "G"])
def test_a_mem_size_that_is_not_a_positive_finite_size_is_refused(text: str) -> None:
    with pytest.raises(InputError, match="^--mem: .*expected a size such as 32G or 512M"):
        parse_size_gib(text, "--mem")


def test_mem_sizes() -> None:
    sizes = [parse_size_gib(text, "--mem") for text in ("32G", "32gb", "512M", "1.5")]
    assert sizes == [32, 32, 0.5, 1.5]


@pytest.mark.parametrize("text", ["1" * 401 + "G", ""])
def test_resubmit_with_a_bad_mem_is_one_line_error(text: str, registry: Path, orch: Orch) -> None:
    code, _, err = orch("resubmit", "5", "--mem", text)
    one_line_error(code, err, "--mem: ")


# 3. an empty or blank argument is an error, not "no argument"

@pytest.mark.parametrize("command", ["status", "cancel", "resubmit", "report"])
@pytest.mark.parametrize("job_id", ["", " "])
def test_an_empty_job_id_is_an_error(command: str, job_id: str, registry: Path, orch: Orch) -> None:
    code, out, err = orch(command, job_id)
    one_line_error(code, err, f"job {job_id!r}: not a job ID")
    assert out == ""


@pytest.mark.parametrize("option", ["--config", "--state", "--since"])
def test_an_empty_status_filter_is_an_error(option: str, registry: Path, orch: Orch) -> None:
    code, out, err = orch("status", option, "")
    one_line_error(code, err, f"{option}: ")
    assert out == ""


def test_an_empty_compare_target_is_an_error(registry: Path, orch: Orch) -> None:
    code, _, err = orch("compare", "")
    one_line_error(code, err, "orch compare: an empty TARGET")


# 4. a registry that does not exist is an error; only submit creates one, inside an existing directory

REGISTRY_COMMANDS = [["status"], ["sync"], ["cancel", "1"], ["resubmit", "1"], ["report", "1"], ["compare", "x"],
                     ["cron", "print"], ["cron", "install"]]


@pytest.mark.parametrize("args", REGISTRY_COMMANDS, ids=[" ".join(a) for a in REGISTRY_COMMANDS])
def test_a_mistyped_registry_is_an_error_and_is_not_created(args: list[str], workdir: Path,
                                                            crontab: Callable[..., Path],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    store = crontab()
    before = store.read_text()
    missing = workdir / "mistyped" / "registry"
    code = main(["--registry", str(missing), *args])
    one_line_error(code, capsys.readouterr().err, f"{missing}: registry does not exist")
    assert not (workdir / "mistyped").exists()
    assert store.read_text() == before


@pytest.mark.parametrize("source", ["ORCH_REGISTRY", "user config", "default"])
def test_a_missing_registry_from_any_source_is_an_error(source: str, workdir: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(workdir)
    missing = workdir / "registry" if source == "default" else workdir / "typo"
    if source == "ORCH_REGISTRY":
        monkeypatch.setenv("ORCH_REGISTRY", str(missing))
    elif source == "user config":
        (workdir / "xdg" / "orch").mkdir(parents=True)
        (workdir / "xdg" / "orch" / "config.yaml").write_text(f"registry: {missing}\n")
    code = main(["sync"])
    one_line_error(code, capsys.readouterr().err, f"{missing}: registry does not exist")
    assert not missing.exists()


def test_a_registry_that_is_a_file_is_an_error(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "registry").write_text("")
    code = main(["--registry", str(workdir / "registry"), "status"])
    one_line_error(code, capsys.readouterr().err, f"{workdir / 'registry'}: registry is not a directory")


@pytest.mark.parametrize("command", [["submit", "--dry-run"], ["validate"]], ids=["submit", "validate"])
def test_submit_creates_a_registry_only_inside_an_existing_directory(
        command: list[str], write_config: Callable[..., Path], workdir: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config()
    missing = workdir / "mistyped" / "registry"
    code = main(["--registry", str(missing), *command, str(config)])
    one_line_error(code, capsys.readouterr().err, f"{missing}: registry does not exist, nor does its parent")
    assert not (workdir / "mistyped").exists()
    (workdir / "mistyped").mkdir()
    assert main(["--registry", str(missing), *command, str(config)]) == 0  # a new registry, made by the submit
    assert not missing.exists()


def test_an_error_naming_a_path_with_a_newline_stays_one_line(workdir: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--registry", str(workdir / "a\nb"), "status"])
    one_line_error(code, capsys.readouterr().err, "a\\nb: registry does not exist")



def test_status_json_of_an_existing_empty_registry_still_works(registry: Path, orch: Orch) -> None:
    code, out, err = orch("status", "--json")
    assert code == 0 and json.loads(out) == [], err


# 5. cron

def test_a_failing_crontab_listing_is_an_error_and_nothing_is_written(crontab: Callable[..., Path],
                                                                       tmp_path: Path) -> None:
    store = crontab('echo "crontab: cannot open /var/spool/cron: Permission denied" >&2; exit 1')
    before = store.read_text()
    with pytest.raises(OrchError, match="crontab -l failed: crontab: cannot open /var/spool/cron: Permission denied"):
        cron.install(tmp_path / "registry")
    assert store.read_text() == before


def test_no_crontab_for_the_user_counts_as_empty(crontab: Callable[..., Path], tmp_path: Path) -> None:
    store = crontab('echo "no crontab for root" >&2; exit 1')
    assert cron.install(tmp_path / "registry") is True
    assert store.read_text() == cron.line(tmp_path / "registry") + "\n"


def cron_command(entry: str) -> str:
    """What cron hands to the shell for ``entry`` (cronie's rule: an unescaped ``%`` ends the command,
    ``\\%`` is a ``%``, any other backslash stays)."""
    out: list[str] = []
    escaped = False
    for ch in entry.split(" ", 5)[5]:
        if escaped and ch == "%":
            out[-1] = "%"
        elif ch == "%":
            break
        else:
            out.append(ch)
        escaped = ch == "\\" and not escaped
    return "".join(out)


def test_a_percent_in_the_registry_path_is_escaped_for_cron(crontab: Callable[..., Path], tmp_path: Path) -> None:
    store = crontab()
    root = tmp_path / "100%" / "registry"
    entry = cron.line(root)
    assert cron_command(entry).endswith(f"--registry {tmp_path}/100%/registry sync --quiet # orch sync {root}")
    assert cron.install(root) is True and cron.install(root) is False
    assert store.read_text().splitlines()[2:] == [entry]


@pytest.mark.parametrize("path", ["reg\nistry", "reg\n* * * * * rm -rf ~", "reg\tistry", "reg\rx", "reg\\%x"])
def test_a_registry_path_that_cron_cannot_carry_is_refused(path: str, crontab: Callable[..., Path],
                                                            tmp_path: Path) -> None:
    store = crontab()
    before = store.read_text()
    for attempt in (lambda: cron.line(tmp_path / path), lambda: cron.install(tmp_path / path)):
        with pytest.raises(InputError, match="cannot be written into a crontab line"):
            attempt()
    assert store.read_text() == before


def test_a_path_variable_with_a_newline_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", "/usr/bin\n* * * * * evil")
    with pytest.raises(InputError, match="^PATH: .*cannot be written into a crontab line"):
        cron.line(tmp_path / "registry")


@pytest.mark.parametrize("every", [0, -5, 60, 1000])
def test_every_min_outside_1_to_59_is_refused(every: int, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="^--every-min: .*expected a whole number of minutes from 1 to 59"):
        cron.line(tmp_path, every)


def test_every_min_bounds_are_accepted(tmp_path: Path) -> None:
    assert cron.line(tmp_path, 1).startswith("*/1 * * * * ") and cron.line(tmp_path, 59).startswith("*/59 ")


def test_cron_print_with_every_min_0_is_one_line_error(registry: Path, orch: Orch) -> None:
    code, out, err = orch("cron", "print", "--every-min", "0")
    one_line_error(code, err, "--every-min: 0: expected a whole number of minutes from 1 to 59")
    assert out == ""


@pytest.mark.parametrize(("option", "value"), [("--files", "-1"), ("--files", "0"), ("--samples", "0")])
def test_demo_data_of_no_files_or_samples_is_a_one_line_error_and_writes_nothing(
        option: str, value: str, tmp_path: Path, orch: Orch) -> None:
    code, out, err = orch("demo-data", str(tmp_path / "demo"), option, value)
    one_line_error(code, err, f"{option}: {value}: expected a whole number from 1")
    assert out == "" and not (tmp_path / "demo").exists()


# 6. times in seconds

@pytest.mark.parametrize("args", [["sync", "--budget-s", "nan"], ["sync", "--budget-s", "-5"],
                                  ["sync", "--budget-s", "0"], ["sync", "--budget-s", "inf"],
                                  ["submit", "--wait", "--poll-s", "-1", "CONFIG"],
                                  ["submit", "--wait", "--poll-s", "nan", "CONFIG"]])
def test_a_time_that_is_not_a_positive_finite_number_of_seconds_is_refused(
        args: list[str], registry: Path, write_config: Callable[..., Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, orch: Orch) -> None:
    calls = tmp_path / "calls.log"
    for name in ("sbatch", "squeue", "sacct", "scontrol", "scancel"):  # nothing may reach a scheduler
        stub = tmp_path / "slurm" / name
        stub.parent.mkdir(exist_ok=True)
        stub.write_text(f'#!/bin/bash\necho "{name} $*" >> "{calls}"\nexit 1\n')
        stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path / 'slurm'}:{os.environ['PATH']}")
    option = "--budget-s" if "sync" in args else "--poll-s"
    config = str(write_config())
    code, out, err = orch(*[config if a == "CONFIG" else a for a in args])
    one_line_error(code, err, f"{option}: {args[args.index(option) + 1]}: expected a number of seconds above 0")
    assert out == "" and os.listdir(registry) == [] and not calls.exists()
