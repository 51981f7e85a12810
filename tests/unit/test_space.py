"""The search-space module: how each form and legacy list is read, and the hyperopt space it builds."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.errors import InputError
from orchestrator.space import KEYS, parse_space


def test_legacy_lists_keep_the_users_meaning() -> None:
    space = parse_space({"learning_rate": [0.0001, 0.005], "decay_rate": [0.95, 0.98],
                         "n_filters": [32, 64], "dropout_rate": [0.1, 0.2]}, "cfg.json")
    forms = {p.name: (p.form, p.args) for p in space.params}
    assert forms["learning_rate"] == ("uniform", (0.0001, 0.005))
    assert forms["decay_rate"] == ("uniform", (0.95, 0.98))
    assert forms["n_filters"] == ("choice", (32, 64))  # 2 elements, but not a range key
    assert forms["dropout_rate"] == ("choice", (0.1, 0.2))


def test_three_learning_rates_are_a_discrete_choice_as_in_v1() -> None:
    (param,) = parse_space({"learning_rate": [0.0005, 0.001, 0.002]}, "cfg.json").params
    assert (param.form, param.args, param.legacy) == ("choice", (0.0005, 0.001, 0.002), True)
    assert "bare list read as discrete choice" in param.describe()


def test_explicit_forms() -> None:
    space = parse_space({"learning_rate": {"loguniform": [1e-4, 1e-2]}, "n_filters": {"quniform": [8, 64, 8]},
                         "pooling": {"choice": ["max", "average"]}}, "cfg.json")
    assert [(p.form, p.legacy) for p in space.params] == [("loguniform", False), ("quniform", False),
                                                          ("choice", False)]


def test_hyperopt_space_samples_inside_the_declared_ranges() -> None:
    from hyperopt import pyll

    space = parse_space({"learning_rate": {"loguniform": [1e-4, 1e-2]}, "n_filters": {"quniform": [8, 64, 8]},
                         "decay_rate": [0.95, 0.98], "kernel_size": [3, 5]}, "cfg.json")
    rng = np.random.default_rng(0)
    for _ in range(50):
        point = space.plain(pyll.stochastic.sample(space.to_hyperopt(), rng=rng))
        assert 1e-4 <= point["learning_rate"] <= 1e-2
        assert point["n_filters"] in range(8, 65, 8) and isinstance(point["n_filters"], int)
        assert 0.95 <= point["decay_rate"] <= 0.98
        assert point["kernel_size"] in (3, 5)


def test_unsearched_keys_get_their_documented_defaults() -> None:
    space = parse_space({"n_filters": [16]}, "cfg.json")
    fixed = space.fixed()
    assert "n_filters" not in fixed and "batch_size" not in fixed
    assert fixed["pooling"] == "max" and fixed["dropout_rate"] == 0.0
    assert set(fixed) | {"n_filters", "batch_size"} == set(KEYS)


@pytest.mark.parametrize("options, message", [
    ({"pooling": {"uniform": [0, 1]}}, "only a choice of them can be searched"),
    ({"decay_rate": [0.9, 1.5]}, "outside the domain of decay_rate"),
    ({"n_filters": [32, 32]}, "repeated values in choice"),
    ({"kernel_size": {"quniform": [3, 7]}}, "quniform expects [lo, hi, q]"),
    ({"kernel_size": {"quniform": [3, 7, 0]}}, "quniform step q must be > 0"),
    ({"n_filters": {"gauss": [1, 2]}}, "expected a list or one of"),
    ({"n_filters": True}, "expected a list or one of"),
    ({"dropout_rate": [True, 0.1]}, "expected a number in [0, 1), got true"),
])
def test_invalid_search_values(options: dict, message: str) -> None:
    with pytest.raises(InputError) as err:
        parse_space(options, "cfg.json")
    assert message in str(err.value)
    assert str(err.value).startswith("cfg.json: model_parameters.space_options.")
