"""Models built by name; every model outputs logits: the paper's teacher/student pairs,
``keras.applications`` students (``mobilenet_v3_small``, ``efficientnet_b0``, …) and a
user's own model as ``keras:PATH.keras``."""

from __future__ import annotations

from typing import Sequence

import keras

from kd_keras.models.alexnet import alexnet, alexnet_half
from kd_keras.models.base import MODELS
from kd_keras.models.cnn4 import cnn4, cnn4_half
from kd_keras.models.lenet import lenet5, lenet5_half
from kd_keras.models.resnet import resnet20, resnet32
from kd_keras.models.zoo import APPLICATIONS, from_file

KERAS_FILE = "keras:"  # a user's own model: keras:PATH.keras


def names() -> list[str]:
    """Every model name ``build`` accepts (besides ``keras:PATH.keras``)."""
    return MODELS.names()


def is_known(name: str) -> bool:
    return name in MODELS or name.startswith(KERAS_FILE)


def build(name: str, input_shape: Sequence[int], num_classes: int) -> keras.Model:
    """Builds the model called ``name`` for ``input_shape`` images and ``num_classes``."""
    if name.startswith(KERAS_FILE):
        return from_file(name[len(KERAS_FILE):], input_shape, int(num_classes))
    return MODELS.lookup(name)(tuple(input_shape), int(num_classes))


__all__ = ["APPLICATIONS", "MODELS", "build", "is_known", "names", "alexnet", "alexnet_half",
           "cnn4", "cnn4_half", "lenet5", "lenet5_half", "resnet20", "resnet32"]
