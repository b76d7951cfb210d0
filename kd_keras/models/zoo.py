"""Students from ``keras.applications`` by name, and a user's own ``.keras`` model.

kd_keras images are float32 in [0, 1]. Each application is wrapped so it gets what it
expects: grayscale is repeated to three channels, images smaller than the application's
minimum side are resized up, and pixels are scaled to [0, 255] for applications whose
built-in preprocessing expects that. The head is a linear layer of the right class count
(logits), never a softmax. No pretrained weights are downloaded (none can be, here).
"""

from __future__ import annotations

import functools
import os
from typing import Sequence

import keras

from kd_keras.errors import ConfigError
from kd_keras.models.base import MODELS

# name -> (keras.applications constructor, minimum side, expects pixels in [0, 255])
APPLICATIONS = {
    "mobilenet_v3_small": ("MobileNetV3Small", 32, True),
    "mobilenet_v3_large": ("MobileNetV3Large", 32, True),
    "mobilenet_v2": ("MobileNetV2", 32, False),
    "efficientnet_b0": ("EfficientNetB0", 32, True),
    "efficientnet_v2_b0": ("EfficientNetV2B0", 32, True),
    "resnet50": ("ResNet50", 32, False),
    "densenet121": ("DenseNet121", 32, False),
    "convnext_tiny": ("ConvNeXtTiny", 32, True),
}


def application(name: str, input_shape: Sequence[int], num_classes: int) -> keras.Model:
    """The ``keras.applications`` model ``name`` as a logits student for [0, 1] images."""
    constructor, min_side, wants_255 = APPLICATIONS[name]
    height, width, channels = (int(d) for d in input_shape)
    side = (max(height, min_side), max(width, min_side))
    inputs = keras.Input((height, width, channels), name="images")
    x = inputs
    if channels == 1:
        x = keras.layers.Concatenate()([x, x, x])
    elif channels != 3:
        raise ConfigError(f"{name} takes 1 or 3 channels, got {channels}")
    if side != (height, width):
        x = keras.layers.Resizing(*side)(x)
    if wants_255:
        x = keras.layers.Rescaling(255.0)(x)
    else:  # applications without built-in preprocessing: centre [0, 1] pixels at 0
        x = keras.layers.Rescaling(2.0, offset=-1.0)(x)
    backbone = getattr(keras.applications, constructor)(
        input_shape=(*side, 3), include_top=False, weights=None, pooling="avg")
    outputs = keras.layers.Dense(num_classes, name="logits")(backbone(x))
    return keras.Model(inputs, outputs, name=name)


for _name in APPLICATIONS:
    MODELS.register(_name, functools.partial(application, _name))


def from_file(path: str, input_shape: Sequence[int], num_classes: int) -> keras.Model:
    """A user's ``.keras`` model (loaded in safe mode) checked against the data's shape."""
    if not os.path.exists(path):
        raise ConfigError(f"student model file not found: {path}")
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as e:  # Keras raises many types (a Lambda refused by safe mode: ValueError)
        lines = [l.strip() for l in str(e).strip().splitlines() if l.strip()]
        raise ConfigError(f"cannot load the student {path}: "
                          f"{lines[0] if lines else type(e).__name__}") from None
    if tuple(model.input_shape[1:]) != tuple(input_shape):
        raise ConfigError(f"student {path} takes {tuple(model.input_shape[1:])}, the data is "
                          f"{tuple(input_shape)}")
    if model.output_shape[-1] != num_classes:
        raise ConfigError(f"student {path} answers {model.output_shape[-1]} classes, the "
                          f"teacher {num_classes}")
    return model
