"""The search-space module: how each form and legacy list is read, and the hyperopt space it builds."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.core.errors import InputError
from orchestrator.core.space import KEYS, parse_space


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


def test_the_values_a_key_takes() -> None:
    space = parse_space({"n_filters": {"quniform": [8, 70, 16]}, "n_conv_layers": [4, 2, 3],
                         "dropout_rate": {"uniform": [0.1, 0.4]}}, "cfg.json")
    assert space.values("n_filters") == (16, 32, 48, 64)  # the steps quniform reaches, as ints
    assert space.values("n_conv_layers") == (4, 2, 3)
    assert space.values("dropout_rate") == (0.1, 0.4)  # a continuous range: its ends
    assert space.values("kernel_size") == (3,) and space.values("batch_size") == (None,)  # not searched


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


MAPPED = {"learning_rate": {"loguniform": [1e-4, 1e-2]}, "decay_rate": [0.95, 0.98],
          "n_filters": {"quniform": [6, 64, 8]}, "dropout_rate": {"quniform": [0.3, 0.5, 0.1]},
          "kernel_size": [3, 5], "pooling": {"choice": ["max", "average"]}, "n_dense_units": {"choice": [16, 32, 64]}}


def _hyperopt_points(n: int) -> tuple[list[dict], list[dict]]:
    """Raw values and plain points of ``n`` random hyperopt proposals over MAPPED."""
    from hyperopt import Trials, base, rand, space_eval

    space = parse_space(MAPPED, "cfg.json")
    expr = space.to_hyperopt()
    domain = base.Domain(lambda _: 0.0, expr)
    docs = rand.suggest(list(range(n)), domain, Trials(), seed=1)
    raws = [{k: v[0].item() for k, v in d["misc"]["vals"].items()} for d in docs]
    assert [space.point(r) for r in raws] == [space.plain(space_eval(expr, r)) for r in raws]  # one reading
    return raws, [space.point(r) for r in raws]


def _optuna_points(n: int) -> list[dict]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = parse_space(MAPPED, "cfg.json")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    return [space.point(study.ask(space.to_optuna()).params) for _ in range(n)]


def _odds(values: list, support: list) -> np.ndarray:
    return np.array([sum(np.isclose(v, s) for v in values) for s in support]) / len(values)


def test_every_form_means_the_same_in_hyperopt_and_optuna() -> None:
    _, hyperopt_points = _hyperopt_points(3000)
    optuna_points = _optuna_points(3000)
    for points in (hyperopt_points, optuna_points):
        column = {k: np.array([p[k] for p in points]) for k in MAPPED if k != "pooling"}
        log_lr = np.log10(column["learning_rate"])  # log scale: uniform in the exponent, not in the value
        assert -4 <= log_lr.min() < -3.9 and -2.1 < log_lr.max() <= -2 and abs(np.median(log_lr) + 3) < 0.1
        assert 0.95 <= column["decay_rate"].min() < 0.951 and 0.979 < column["decay_rate"].max() <= 0.98
        # quniform: q·round(x/q) for x in [6, 64]: 8..64, though 6 is no multiple of 8
        assert sorted(set(column["n_filters"].tolist())) == list(range(8, 65, 8))
        assert all(isinstance(p["n_filters"], int) for p in points)
        # the two ends, 0.3 and 0.5 (which float steps from 0.3 would miss), at half the odds of 0.4
        assert sorted(set(np.round(column["dropout_rate"], 12).tolist())) == [0.3, 0.4, 0.5]
        assert np.allclose(_odds(column["dropout_rate"], [0.3, 0.4, 0.5]), [0.25, 0.5, 0.25], atol=0.04)
        assert sorted(set(column["kernel_size"].tolist())) == [3, 5]
        assert {p["pooling"] for p in points} == {"max", "average"}
        counts = np.bincount([(16, 32, 64).index(u) for u in column["n_dense_units"]]) / len(points)
        assert np.allclose(counts, 1 / 3, atol=0.04)  # a choice is unordered: each value alike
    filters = [_odds([p["n_filters"] for p in points], list(range(8, 65, 8)))
               for points in (hyperopt_points, optuna_points)]
    assert np.allclose(filters[0], filters[1], atol=0.03)  # 8 and 64 at 6/58 and 4/58, the others 8/58


def test_a_quniform_whose_rounded_ends_leave_the_domain_is_refused() -> None:
    with pytest.raises(InputError) as err:
        parse_space({"n_filters": {"quniform": [1, 64, 16]}}, "cfg.json")
    assert str(err.value) == ("cfg.json: model_parameters.space_options.n_filters: [1, 64, 16] takes values from 0 to "
                              "64 in steps of 16; 0 is outside the domain of n_filters: an integer ≥ 1")
