"""The search space: what each ``space_options`` key means, in one place.

A key's value is either an explicit form::

    {"choice": [...]}  {"uniform": [lo, hi]}  {"loguniform": [lo, hi]}  {"quniform": [lo, hi, q]}

or a legacy bare list, read the way the users meant it: for ``learning_rate`` and
``decay_rate`` a 2-element list is a continuous uniform range; every other list is
a discrete choice. Keys the model builder does not know are errors.

Both sides use this module: ``orch validate`` prints ``describe()``, and the job builds
the proposer's space with ``to_hyperopt()`` or ``to_optuna()``, which give every form one
meaning in both libraries: a choice is drawn as its index, unordered; a quniform value is
``q · round(x / q)`` for x uniform in [lo, hi] (hyperopt's definition; Optuna draws x and
``point()`` rounds it, so the values and their odds are the same, the two ends at half the
odds of the others). A point is kept in the records as the proposer's raw values (``vals``)
and read back with ``point()``. hyperopt and Optuna are imported only in the two builders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from orchestrator.core.errors import InputError
from orchestrator.core.fields import (
    did_you_mean,
    is_int,
    is_number,
    json_preview,
    json_type,
)

FORMS = ("choice", "uniform", "loguniform", "quniform")
LEGACY_RANGE_KEYS = frozenset({"learning_rate", "decay_rate"})


@dataclass(frozen=True)
class KeySpec:
    """What the model builder accepts for one search key."""

    kind: type  # int, float or str
    check: Callable[[Any], bool]
    domain: str  # human words for ``check``
    default: Any  # used when the key is not searched; None means "from model_parameters"
    effect: str


def _positive(v: Any) -> bool:
    return v > 0


KEYS: Mapping[str, KeySpec] = {
    "n_conv_layers": KeySpec(int, _positive, "an integer ≥ 1", 2, "convolution blocks"),
    "n_filters": KeySpec(int, _positive, "an integer ≥ 1", 32, "filters of every conv block"),
    "kernel_size": KeySpec(int, _positive, "an integer ≥ 1", 3, "square conv kernel size"),
    "pooling": KeySpec(str, lambda v: v in ("max", "average"), "'max' or 'average'", "max", "2×2 pooling after each conv block"),
    "n_dense_layers": KeySpec(int, lambda v: v >= 0, "an integer ≥ 0", 1, "hidden dense layers"),
    "n_dense_units": KeySpec(int, _positive, "an integer ≥ 1", 64, "units per hidden dense layer"),
    "dropout_rate": KeySpec(float, lambda v: 0 <= v < 1, "a number in [0, 1)", 0.0, "dropout after each dense layer"),
    "learning_rate": KeySpec(float, _positive, "a number > 0", 1e-3, "Adam initial learning rate"),
    "decay_rate": KeySpec(float, lambda v: 0 < v <= 1, "a number in (0, 1]", 1.0, "ExponentialDecay rate per epoch"),
    "batch_size": KeySpec(int, _positive, "an integer ≥ 1", None, "training batch size"),
}


@dataclass(frozen=True)
class SearchParam:
    """One searched key: its distribution and how the config spelled it."""

    name: str
    form: str  # one of FORMS
    args: tuple[Any, ...]  # the choice values, or (lo, hi) / (lo, hi, q)
    legacy: bool  # written as a bare list

    def quantized_bounds(self) -> tuple[float, float]:
        """The lowest and highest value a quniform key takes: lo and hi rounded to the step q."""
        lo, hi, q = self.args
        return q * math.floor(lo / q + 0.5), q * math.ceil(hi / q - 0.5)

    def describe(self) -> str:
        """One line saying how the key was read, e.g. ``learning_rate: uniform(0.0001, 0.005)``."""
        values = ", ".join(repr(a) if isinstance(a, str) else f"{a:g}" for a in self.args)
        text = f"{self.name}: {self.form}({values})"
        if self.legacy:
            meaning = "continuous range" if self.form == "uniform" else "discrete choice"
            text += f"  [bare list read as {meaning}]"
        return text


@dataclass(frozen=True)
class SearchSpace:
    """The searched keys, in config order, plus the fixed defaults of the others."""

    params: tuple[SearchParam, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def fixed(self) -> dict[str, Any]:
        """Values of the builder keys not searched (``batch_size`` is left to the caller)."""
        return {k: s.default for k, s in KEYS.items() if k not in self.names and s.default is not None}

    def values(self, name: str) -> tuple[Any, ...]:
        """The values a key takes: a choice's, a quniform's steps from the lowest to the highest it
        reaches (integral keys rounded as ``point()`` rounds them), the two ends of a continuous range,
        or, not searched, its fixed default alone (None for ``batch_size``: ``model_parameters``')."""
        for p in self.params:
            if p.name == name:
                if p.form == "choice":
                    return p.args
                if p.form == "quniform":
                    lo, hi = p.quantized_bounds()
                    ends = tuple(lo + i * p.args[2] for i in range(round((hi - lo) / p.args[2]) + 1))
                else:
                    ends = p.args
                return tuple(int(round(v)) for v in ends) if KEYS[name].kind is int else ends
        return (KEYS[name].default,)

    def describe(self) -> list[str]:
        """How every builder key will be set: searched forms first, then fixed defaults."""
        lines = [p.describe() for p in self.params]
        lines += [f"{k}: fixed {v!r} (default: {KEYS[k].effect})" for k, v in self.fixed().items()]
        return lines

    def to_hyperopt(self) -> dict[str, Any]:
        """The hyperopt space (a dict of ``hp`` expressions keyed by search key)."""
        from hyperopt import (
            hp,  # imported here only: 1 s that validate/status never pay
        )

        space: dict[str, Any] = {}
        for p in self.params:
            if p.form == "choice":
                space[p.name] = hp.choice(p.name, list(p.args))
            elif p.form == "uniform":
                space[p.name] = hp.uniform(p.name, *p.args)
            elif p.form == "loguniform":
                lo, hi = p.args
                space[p.name] = hp.loguniform(p.name, math.log(lo), math.log(hi))
            else:
                space[p.name] = hp.quniform(p.name, *p.args)
        return space

    def to_optuna(self) -> dict[str, Any]:
        """Optuna's distributions, keyed by search key: through ``point()``, the values and odds of
        ``to_hyperopt()`` (a quniform is its continuous x, which ``point()`` rounds to the step)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution

        space: dict[str, Any] = {}
        for p in self.params:
            if p.form == "choice":
                space[p.name] = CategoricalDistribution(tuple(range(len(p.args))))
            else:
                space[p.name] = FloatDistribution(*p.args[:2], log=p.form == "loguniform")
        return space

    def point(self, vals: Mapping[str, Any]) -> dict[str, Any]:
        """The plain builder values of raw values: a choice's value for its index, a quniform value
        rounded to its step (hyperopt's raw value already is; Optuna's is the continuous x), ints
        where the key is integral."""
        out = {}
        for p in self.params:
            raw = vals[p.name]
            if p.form == "choice":
                out[p.name] = p.args[int(raw)]
            elif p.form == "quniform":
                out[p.name] = round(raw / p.args[2]) * p.args[2]
            else:
                out[p.name] = raw
        return self.plain(out)

    def plain(self, point: Mapping[str, Any]) -> dict[str, Any]:
        """A sampled point as plain builder values: ints where the key is integral."""
        out = dict(point)
        for name in self.names:
            if name in KEYS and KEYS[name].kind is int:  # a key of the builder's (a bench's space has others)
                out[name] = int(round(out[name]))
        return out


def parse_space(options: Any, where: str, path: str = "model_parameters.space_options") -> SearchSpace:
    """Read ``space_options`` into a ``SearchSpace``; ``where`` is the config file for errors."""
    if not isinstance(options, dict):
        raise InputError(where, f"{path}: expected an object of search keys, got {json_type(options)}")
    params = []
    for name, value in options.items():
        key_path = f"{path}.{name}"
        if name not in KEYS:
            raise InputError(where, f"{key_path}: unknown key{did_you_mean(name, KEYS)}; "
                             f"the model builder knows {', '.join(KEYS)}")
        params.append(_parse_param(name, value, where, key_path))
    return SearchSpace(tuple(params))


def _parse_param(name: str, value: Any, where: str, path: str) -> SearchParam:
    legacy = isinstance(value, list)
    if legacy:
        is_range = name in LEGACY_RANGE_KEYS and len(value) == 2
        form, args = ("uniform" if is_range else "choice"), value
    elif isinstance(value, dict) and len(value) == 1 and next(iter(value)) in FORMS:
        form, args = next(iter(value.items()))
        if not isinstance(args, list):
            raise InputError(where, f"{path}.{form}: expected a list, got {json_type(args)}")
    else:
        raise InputError(where, f"{path}: expected a list or one of "
                         + ", ".join(f'{{"{f}": [...]}}' for f in FORMS) + f", got {json_preview(value)}")
    spec = KEYS[name]
    if form == "choice":
        if not args:
            raise InputError(where, f"{path}: empty choice; list at least one value")
        for i, v in enumerate(args):
            _check_value(spec, v, where, f"{path}[{i}]")
        if len(set(map(repr, args))) != len(args):
            raise InputError(where, f"{path}: repeated values in choice {args}")
        return SearchParam(name, form, tuple(args), legacy)
    if spec.kind is str:
        raise InputError(where, f"{path}: {name} takes values {spec.domain}; only a choice of them can be searched")
    expected = 3 if form == "quniform" else 2
    if len(args) != expected:
        shape = "[lo, hi, q]" if form == "quniform" else "[lo, hi]"
        raise InputError(where, f"{path}: {form} expects {shape}, got {args}")
    for i, v in enumerate(args):
        if not is_number(v):
            raise InputError(where, f"{path}[{i}]: expected a number, got {json_preview(v)}")
    lo, hi = args[0], args[1]
    if lo >= hi:
        raise InputError(where, f"{path}: lower bound {lo} must be below upper bound {hi}")
    if form == "loguniform" and lo <= 0:
        raise InputError(where, f"{path}: loguniform needs lo > 0, got {lo}")
    if form == "quniform" and args[2] <= 0:
        raise InputError(where, f"{path}: quniform step q must be > 0, got {args[2]}")
    for i, bound in enumerate((lo, hi)):
        if not spec.check(bound):
            raise InputError(where, f"{path}[{i}]: {bound} is outside the domain of {name}: {spec.domain}")
    param = SearchParam(name, form, tuple(float(a) for a in args), legacy)
    if form == "quniform":
        reached = param.quantized_bounds()
        for bound in reached:
            if not spec.check(bound):
                raise InputError(where, f"{path}: {args} takes values from {reached[0]:g} to {reached[1]:g} in "
                                 f"steps of {args[2]:g}; {bound:g} is outside the domain of {name}: {spec.domain}")
    if spec.kind is int and form != "quniform":
        raise InputError(where, f"{path}: {name} is an integer; use choice or quniform, not {form}")
    return param


def _check_value(spec: KeySpec, value: Any, where: str, path: str) -> None:
    if spec.kind is str:
        ok_type = isinstance(value, str)
    elif spec.kind is int:
        ok_type = is_int(value)
    else:
        ok_type = is_number(value)
    if not ok_type or not spec.check(value):
        raise InputError(where, f"{path}: expected {spec.domain}, got {json_preview(value)}")
