"""CIFAR-style AlexNet and AlexNet-Half, the paper's CIFAR-10 pair."""

from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

from kd_keras.models.base import MODELS


@MODELS.register("alexnet")
def alexnet(input_shape: Sequence[int], num_classes: int, width: float = 1.0,
            name: str = "alexnet") -> keras.Model:
    """Five conv layers with batch norm and two hidden dense layers, for 32x32 inputs."""
    w = lambda n: max(1, int(round(n * width)))  # noqa: E731
    inputs = keras.Input(tuple(input_shape))
    x = inputs
    for filters, kernel, pool in ((64, 5, True), (192, 5, True), (384, 3, False),
                                  (256, 3, False), (256, 3, True)):
        x = layers.Conv2D(w(filters), kernel, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        if pool:
            x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    x = layers.Flatten()(x)
    for units in (1024, 512):
        x = layers.Dropout(0.5)(x)
        x = layers.Dense(w(units), activation="relu")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


@MODELS.register("alexnet_half")
def alexnet_half(input_shape: Sequence[int], num_classes: int) -> keras.Model:
    """AlexNet-Half: half the channels and units of ``alexnet``."""
    return alexnet(input_shape, num_classes, width=0.5, name="alexnet_half")
