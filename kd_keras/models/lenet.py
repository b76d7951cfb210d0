"""LeNet-5 and LeNet-5-Half (half the channels and units), the paper's MNIST-family pair, and
LeNet-5-Wide (twice them), a larger first student to label unpaid images."""

from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

from kd_keras.models.base import MODELS


@MODELS.register("lenet5")
def lenet5(input_shape: Sequence[int], num_classes: int, width: float = 1.0,
           name: str = "lenet5") -> keras.Model:
    """LeNet-5 (conv6-pool-conv16-pool-fc120-fc84) returning logits; ``width`` scales it."""
    w = lambda n: max(1, int(round(n * width)))  # noqa: E731
    inputs = keras.Input(tuple(input_shape))
    x = layers.Conv2D(w(6), 5, padding="same", activation="relu")(inputs)
    x = layers.MaxPooling2D(2, padding="same")(x)
    x = layers.Conv2D(w(16), 5, padding="valid" if input_shape[0] >= 16 else "same",
                      activation="relu")(x)
    x = layers.MaxPooling2D(2, padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(w(120), activation="relu")(x)
    x = layers.Dense(w(84), activation="relu")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


@MODELS.register("lenet5_half")
def lenet5_half(input_shape: Sequence[int], num_classes: int) -> keras.Model:
    """LeNet-5-Half: the paper's student for MNIST and Fashion-MNIST."""
    return lenet5(input_shape, num_classes, width=0.5, name="lenet5_half")


@MODELS.register("lenet5_wide")
def lenet5_wide(input_shape: Sequence[int], num_classes: int) -> keras.Model:
    """LeNet-5 at twice the width (about 3.4x its multiply-adds): a first student that only
    labels unpaid images (``unpaid.model=lenet5_wide``) may be larger than the teacher."""
    return lenet5(input_shape, num_classes, width=2.0, name="lenet5_wide")
