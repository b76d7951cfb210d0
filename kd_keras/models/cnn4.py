"""A CPU-sized CIFAR pair: ``cnn4`` (24.5 MMAC per 32x32x3 image) and ``cnn4_half`` (6.3 MMAC).

Four stages of 3x3 convolutions with batch norm (32 | 64 | 128, 128 | 256 channels, max
pooling between stages, global average pooling, a linear head). The paper's AlexNet needs
about 0.45 GFLOP per image, hours per student on 2 cores; this pair keeps its shape of the
problem (the student has half the channels, a quarter of the compute) at a size 2 cores
can distill in minutes.
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

from kd_keras.models.base import MODELS

STAGES = ((32,), (64,), (128, 128), (256,))


@MODELS.register("cnn4")
def cnn4(input_shape: Sequence[int], num_classes: int, width: float = 1.0,
         name: str = "cnn4") -> keras.Model:
    """The teacher-sized network; ``width`` scales every layer's channels."""
    inputs = keras.Input(tuple(input_shape))
    x = inputs
    for stage, filters in enumerate(STAGES):
        if stage:
            x = layers.MaxPooling2D()(x)
        for f in filters:
            x = layers.Conv2D(max(1, int(round(f * width))), 3, padding="same",
                              use_bias=False)(x)
            x = layers.ReLU()(layers.BatchNormalization()(x))
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


@MODELS.register("cnn4_half")
def cnn4_half(input_shape: Sequence[int], num_classes: int) -> keras.Model:
    """Half the channels of ``cnn4``: about a quarter of its compute."""
    return cnn4(input_shape, num_classes, width=0.5, name="cnn4_half")
