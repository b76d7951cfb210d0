"""CIFAR-style ResNets (He et al. 2016, section 4.2): ResNet-20 and ResNet-32."""

from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

from kd_keras.models.base import MODELS

from kd_keras.errors import ConfigError


def _block(x, filters: int, stride: int):
    shortcut = x
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
    y = layers.BatchNormalization()(y)
    y = layers.ReLU()(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
    y = layers.BatchNormalization()(y)
    if stride != 1 or shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False)(shortcut)
        shortcut = layers.BatchNormalization()(shortcut)
    return layers.ReLU()(layers.Add()([y, shortcut]))


def cifar_resnet(depth: int, input_shape: Sequence[int], num_classes: int) -> keras.Model:
    """ResNet-``depth`` with 3 stages of (depth-2)/6 basic blocks at 16, 32, 64 channels."""
    if (depth - 2) % 6:
        raise ConfigError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
    n = (depth - 2) // 6
    inputs = keras.Input(tuple(input_shape))
    x = layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    for stage, filters in enumerate((16, 32, 64)):
        for i in range(n):
            x = _block(x, filters, 2 if stage > 0 and i == 0 else 1)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=f"resnet{depth}")


@MODELS.register("resnet20")
def resnet20(input_shape: Sequence[int], num_classes: int) -> keras.Model:
    """ResNet-20: the paper's CIFAR-100 student."""
    return cifar_resnet(20, input_shape, num_classes)


@MODELS.register("resnet32")
def resnet32(input_shape: Sequence[int], num_classes: int) -> keras.Model:
    """ResNet-32: the paper's CIFAR-100 teacher."""
    return cifar_resnet(32, input_shape, num_classes)
