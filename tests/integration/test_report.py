"""Reports from real finished searches: content equal to the registry, rendered in a real headless
Chromium (Debian's chromium + chromium-driver, driven by selenium), and `orch compare` of a lineage."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Callable

import pytest

from orchestrator.cli import main
from orchestrator.core.registry import JobPaths
from orchestrator.launch.synthetic import generate

pytestmark = pytest.mark.slow
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
FIGURES = ("objective", "search_keys", "training", "roc", "confusion")


@pytest.fixture(scope="module")
def lineage(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Two versions of one config, each searched to the end through the local executor."""
    base = tmp_path_factory.mktemp("lineage")
    generate(base / "data", files_per_production=2, samples_per_file=80, planes=("X",), seed=9)
    (base / "repo" / ".git").mkdir(parents=True)
    v1 = {"model_name": "hyperopt_simple_cnn", "plane": "X",
          "data_directories": [str(base / "data" / "es"), str(base / "data" / "cc")],
          "dataset_parameters": {"train_fraction": 0.6, "val_fraction": 0.2, "test_fraction": 0.2,
                                 "batch_pattern": "*_planeX.npz"},
          "model_parameters": {"input_shape": [128, 16, 1], "hp_max_evals": 2, "epochs": 3, "batch_size": 32,
                               "space_options": {"n_filters": [4, 8], "learning_rate": [0.001, 0.003]}}}
    v2 = json.loads(json.dumps(v1))
    v2["model_parameters"]["hp_max_evals"] = 3
    v2["model_parameters"]["space_options"]["dropout_rate"] = [0.1, 0.3]
    job_ids = []
    for name, cfg in (("lin.json", v1), ("lin_v2.json", v2)):
        path = base / "repo" / name
        path.write_text(json.dumps(cfg))
        code = main(["--registry", str(base / "registry"), "submit", "--local", "--wait", str(path)])
        assert code == 0
        job_ids.append(sorted(os.listdir(base / "registry" / "jobs"))[-1])
    assert main(["--registry", str(base / "registry"), "sync", "--quiet"]) == 0
    return base / "registry", job_ids


def test_report_content_equals_the_registry(lineage: tuple[Path, list[str]], capsys) -> None:
    root, (_, job) = lineage
    capsys.readouterr()
    assert main(["--registry", str(root), "report", job]) == 0
    html_path, md_path = (Path(p) for p in capsys.readouterr().out.split())
    result = json.loads(JobPaths(root, job).result.read_text())
    assert html_path.parent == Path(result["artifacts"]["model"]).parent  # beside the artifacts
    page = html_path.read_text()
    assert len(re.findall(r"<img alt='[^']+' src='data:image/png;base64,", page)) == len(FIGURES)
    assert "<script src" not in page and "http" not in page.replace("http-equiv", "")  # nothing fetched
    trials = [json.loads(line) for line in JobPaths(root, job).trials.read_text().splitlines()]
    best = min(trials, key=lambda r: r["loss"])
    assert "best result found" in page and f"(trial {best['trial'] + 1}/3)" in page
    for r in trials:
        assert f"<td>{r['objective']:.4f}</td>" in page
    test = result["test"]
    assert f"<td>{test['f1']:.4f}</td><td>{test['auc']:.4f}</td>" in page
    assert "hp_max_evals: 2 → 3" in page and "+ space_options.dropout_rate: [0.1, 0.3]" in page
    markdown = md_path.read_text()
    for name in FIGURES:
        figure = md_path.parent / f"{job}_report_{name}.png"
        assert f"]({figure.name})" in markdown and figure.stat().st_size > 1000


def test_report_renders_in_headless_chromium(lineage: tuple[Path, list[str]], browser: Callable[[], Any]) -> None:
    driver = browser()
    root, (_, job) = lineage
    from orchestrator.present.report import write

    html_path, _ = write(root, job)
    driver.get(html_path.as_uri())
    loaded = driver.execute_script("return Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
    assert loaded == [True] * len(FIGURES)
    driver.find_element("css selector", "table.sortable th").click()  # the sort script runs without error
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    OUTPUT.mkdir(exist_ok=True)
    assert driver.save_screenshot(str(OUTPUT / "report.png"))  # kept as a CI artifact


def test_compare_a_lineage(lineage: tuple[Path, list[str]], capsys, tmp_path: Path) -> None:
    root, (first, second) = lineage
    capsys.readouterr()
    assert main(["--registry", str(root), "compare", "lin", "--html", str(tmp_path / "compare.html")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| version | job ID(s) | trials | proposer | best trial | objective |")
    assert lines[2].startswith(f"| lin_v1 | {first} | 2/2 | hyperopt TPE, 2 of 2 trials random start-up |")
    assert lines[3].startswith(f"| lin_v2 | {second} | 3/3 | hyperopt TPE, 3 of 3 trials random start-up |")
    assert "hp_max_evals: 2 → 3; + space_options.dropout_rate: [0.1, 0.3]" in lines[3]
    assert (tmp_path / "compare.html").read_text().count("data:image/png;base64,") == 1
    assert main(["--registry", str(root), "compare", "lin", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    result = json.loads(JobPaths(root, second).result.read_text())
    assert rows[1]["test_f1"] == result["test"]["f1"] and rows[1]["job_ids"] == [second]
