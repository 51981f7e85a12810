"""Every search key changes the built Keras model or its training."""

from __future__ import annotations

import math
from typing import Any

import keras
import pytest

from jobs.model import build_model
from orchestrator.core.space import KEYS
from orchestrator.launch.memory import Network

BASE = {"n_conv_layers": 2, "n_filters": 16, "kernel_size": 3, "pooling": "max", "n_dense_layers": 1,
        "n_dense_units": 32, "dropout_rate": 0.0, "learning_rate": 1e-3, "decay_rate": 1.0, "batch_size": 64}


def layers(model: keras.Model, kind: type) -> list[Any]:
    return [layer for layer in model.layers if isinstance(layer, kind)]


def build(**changes: Any) -> keras.Model:
    return build_model({**BASE, **changes}, (128, 16, 1), steps_per_epoch=10)


def test_the_base_point_names_every_builder_key() -> None:
    assert set(BASE) == set(KEYS)


def test_conv_depth_filters_kernel_and_pooling() -> None:
    model = build(n_conv_layers=3, n_filters=24, kernel_size=5, pooling="average")
    convs = layers(model, keras.layers.Conv2D)
    assert len(convs) == 3
    assert all(c.filters == 24 and c.kernel_size == (5, 5) for c in convs)
    assert len(layers(model, keras.layers.AveragePooling2D)) == 3 and not layers(model, keras.layers.MaxPooling2D)


def test_four_conv_layers_build_for_128x16_and_deeper_stops_pooling_the_narrow_side() -> None:
    model = build(n_conv_layers=4)
    assert len(layers(model, keras.layers.Conv2D)) == 4
    assert model.get_layer("flatten").input.shape[1:] == (8, 1, 16)
    deeper = build(n_conv_layers=6)  # 16 → 8 → 4 → 2 → 1 → 1 → 1 along the width
    pools = layers(deeper, keras.layers.MaxPooling2D)
    assert [p.pool_size for p in pools] == [(2, 2)] * 4 + [(2, 1)] * 2
    assert deeper.get_layer("flatten").input.shape[1:] == (2, 1, 16)
    assert deeper.predict(keras.ops.zeros((2, 128, 16, 1)), verbose=0).shape == (2, 1)


def test_dense_layers_units_and_dropout() -> None:
    model = build(n_dense_layers=3, n_dense_units=48, dropout_rate=0.3)
    dense = [d for d in layers(model, keras.layers.Dense) if d.name != "output"]
    assert [d.units for d in dense] == [48, 48, 48]
    assert [d.rate for d in layers(model, keras.layers.Dropout)] == pytest.approx([0.3] * 3)
    assert not layers(build(n_dense_layers=2, dropout_rate=0.0), keras.layers.Dropout)


def test_learning_rate_decays_by_decay_rate_per_epoch() -> None:
    config = build(learning_rate=0.002, decay_rate=0.9).optimizer.get_config()["learning_rate"]["config"]
    assert config["initial_learning_rate"] == pytest.approx(0.002)
    assert config["decay_rate"] == pytest.approx(0.9) and config["decay_steps"] == 10  # steps per epoch


def test_binary_head() -> None:
    model = build()
    assert model.get_layer("output").units == 1 and model.loss == "binary_crossentropy"


@pytest.mark.parametrize("n_conv_layers, n_filters, kernel_size, n_dense_layers", [(2, 16, 3, 1), (6, 8, 5, 0)])
def test_the_memory_model_counts_the_built_network(n_conv_layers: int, n_filters: int, kernel_size: int,
                                                   n_dense_layers: int) -> None:
    model = build(n_conv_layers=n_conv_layers, n_filters=n_filters, kernel_size=kernel_size,
                  n_dense_layers=n_dense_layers, dropout_rate=0.2)
    kept = [layer for layer in model.layers if not isinstance(layer, (keras.layers.InputLayer, keras.layers.Flatten,
                                                                        keras.layers.Dropout))]
    activations = sum(math.prod(layer.output.shape[1:]) for layer in kept)
    network = Network(n_conv_layers, n_filters, kernel_size, n_dense_layers, BASE["n_dense_units"], 64)
    assert network.counts((128, 16, 1)) == (model.count_params(), activations)
