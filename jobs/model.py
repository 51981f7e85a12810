"""The Keras 3 CNN built from one sampled point of the search space.

Every search key has an effect (``orchestrator.core.space.KEYS`` says which):
``n_conv_layers`` blocks of Conv2D(``n_filters``, ``kernel_size``, same padding, ReLU)
each followed by 2×2 ``pooling`` — along a dimension only while it stays ≥ 1, so
deeper networks than the input allows still build; then ``n_dense_layers`` Dense
(``n_dense_units``, ReLU) each followed by Dropout(``dropout_rate``); Adam with an
ExponentialDecay of ``learning_rate`` by ``decay_rate`` per epoch. ``batch_size`` is
used by ``fit`` (see ``jobs.trial``). The head is chosen by the task's output kind;
only the binary head (sigmoid + binary cross-entropy) exists today.
"""

from __future__ import annotations

from typing import Any

import keras

HEADS = {"binary": (1, "sigmoid", "binary_crossentropy")}


def pool_size(height: int, width: int) -> tuple[int, int]:
    """2×2 pooling, but never along a dimension that would shrink below 1."""
    return (2 if height >= 2 else 1, 2 if width >= 2 else 1)


def build_model(point: dict[str, Any], input_shape: tuple[int, int, int], steps_per_epoch: int,
                head: str = "binary") -> keras.Model:
    """Compile the CNN for ``point`` (plain values, every builder key present)."""
    units, activation, loss = HEADS[head]
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    height, width = input_shape[:2]
    pooling = keras.layers.MaxPooling2D if point["pooling"] == "max" else keras.layers.AveragePooling2D
    for i in range(point["n_conv_layers"]):
        x = keras.layers.Conv2D(point["n_filters"], point["kernel_size"], padding="same", activation="relu",
                                name=f"conv_{i}")(x)
        size = pool_size(height, width)
        if size != (1, 1):
            x = pooling(pool_size=size, name=f"pool_{i}")(x)
            height, width = height // size[0], width // size[1]
    x = keras.layers.Flatten(name="flatten")(x)
    for i in range(point["n_dense_layers"]):
        x = keras.layers.Dense(point["n_dense_units"], activation="relu", name=f"dense_{i}")(x)
        if point["dropout_rate"] > 0:
            x = keras.layers.Dropout(point["dropout_rate"], name=f"dropout_{i}")(x)
    outputs = keras.layers.Dense(units, activation=activation, name="output")(x)
    model = keras.Model(inputs, outputs, name="hyperopt_simple_cnn")
    schedule = keras.optimizers.schedules.ExponentialDecay(
        point["learning_rate"], decay_steps=max(1, steps_per_epoch), decay_rate=point["decay_rate"])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule), loss=loss,
                  metrics=["accuracy", keras.metrics.AUC(name="auc")])
    return model
