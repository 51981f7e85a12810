"""``orch diff`` on the shipped lineage, in the shape of the users' notes."""

from __future__ import annotations

from typing import Callable

from orchestrator.present.lineage import diff
from tests.helpers import REPO

FOLDER = REPO / "json" / "mt_identifier"


def test_v4_against_its_parent_v2(orch: Callable[..., tuple[int, str, str]]) -> None:
    code, out, _ = orch("diff", str(FOLDER / "production_training_prod_main_v4.json"))
    assert code == 0
    assert out.splitlines() == [
        "production_training_prod_main_v2 → production_training_prod_main_v4",
        '  output_folder: "training_output/mt_identifier/prod_main_v2" → "training_output/mt_identifier/prod_main_v4"',
        "  balance_data: false → true",
        "  hp_max_evals: 20 → 25",
        "  + space_options.dropout_rate: [0.1, 0.2, 0.3, 0.4]",
        "  + space_options.batch_size: [64, 128, 256]",
    ]


def test_two_configs_and_removed_keys(orch: Callable[..., tuple[int, str, str]]) -> None:
    code, out, _ = orch("diff", str(FOLDER / "production_training_prod_main_v3.json"),
                        str(FOLDER / "production_training_prod_main.json"))
    assert code == 0
    assert "  balance_data: true → false" in out.splitlines()
    assert "  - resources.mem_gb: 20" in out.splitlines()


def test_notes_and_identity_are_not_changes() -> None:
    old = {"name": "a", "training_notes": {"date": "1"}, "model_parameters": {"epochs": 3}}
    new = {"name": "b", "training_notes": {"date": "2"}, "model_parameters": {"epochs": 3}}
    assert diff(old, new) == []


def test_first_version_has_no_parent(orch: Callable[..., tuple[int, str, str]]) -> None:
    code, _, err = orch("diff", str(FOLDER / "production_training_prod_main.json"))
    assert code == 2
    assert "has no parent" in err
