"""Skimming a JSON object: the same small values as json.loads, the large nested ones left out."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from orchestrator.core.skim import skim_object


def small_values(data: dict[str, Any], limit: int) -> dict[str, Any]:
    """What skim_object must give: ``data`` without its array and object values longer than ``limit``."""
    return {k: v for k, v in data.items() if not (isinstance(v, (list, dict)) and len(json.dumps(v)) > limit)}


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.choice(["int", "float", "str", "bool", "null"] + (["list", "dict"] if depth < 3 else []))
    if kind == "list":
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 40))]
    if kind == "dict":
        return {rng.choice(['a', 'b"[{', 'c\\\\]', 'ü}']) + str(i): random_value(rng, depth + 1)
                for i in range(rng.randint(0, 6))}
    return {"int": lambda: rng.randint(-10**6, 10**6), "float": lambda: rng.uniform(-1, 1),
            "str": lambda: "".join(rng.choice('ab"\\[]{},: \n\tü') for _ in range(rng.randint(0, 12))),
            "bool": lambda: rng.random() < 0.5, "null": lambda: None}[kind]()


def test_a_skimmed_object_holds_exactly_its_small_values() -> None:
    rng = random.Random(7)
    for _ in range(300):
        data = {f"key{i}": random_value(rng) for i in range(rng.randint(0, 8))}
        assert skim_object(json.dumps(data).encode(), 40) == small_values(data, 40)  # as orch writes its lines
        for text in (json.dumps(data, indent=1), json.dumps(data, ensure_ascii=False, separators=(",", ":"))):
            assert skim_object(text.encode(), 10**9) == data
            assert skim_object(text.encode(), 0) == small_values(data, 0)


def test_a_trial_record_keeps_its_summary_and_leaves_its_history_out() -> None:
    history = {"val_loss": [0.5 + e / 1e4 for e in range(2000)], "note": 'a "quoted" ] bracket'}
    record = {"trial": 3, "status": "ok", "loss": 0.25, "params": {"n_filters": 64}, "history": history}
    assert skim_object(json.dumps(record, sort_keys=True).encode(), 8192) == {
        "trial": 3, "status": "ok", "loss": 0.25, "params": {"n_filters": 64}}


def test_a_repeated_key_counts_with_its_last_value_as_in_json_loads() -> None:
    assert skim_object(b'{"x": 1, "x": [1, 2, 3, 4, 5, 6]}', 8) == {}
    assert skim_object(b'{"x": [1, 2, 3, 4, 5, 6], "x": 1}', 8) == {"x": 1}


@pytest.mark.parametrize("text", ['{"trial": 1, "history": [1, 2', '{"trial": 1', '[1, 2]', '{"a": 1} x',
                                  '{"a": "open', '{1: 2}', '{"a" 1}', '{"a": [1] "b": 2}'])
def test_what_is_not_one_json_object_is_an_error(text: str) -> None:
    with pytest.raises(ValueError):
        skim_object(text.encode(), 2)
