"""The paper's teacher/student architectures, built by name; every model outputs logits."""

from __future__ import annotations

from typing import Callable, Sequence

import keras

from kd_keras.errors import ConfigError
from kd_keras.models.alexnet import alexnet, alexnet_half
from kd_keras.models.lenet import lenet5, lenet5_half
from kd_keras.models.resnet import resnet20, resnet32

BUILDERS: dict[str, Callable[[Sequence[int], int], keras.Model]] = {
    "lenet5": lenet5,
    "lenet5_half": lenet5_half,
    "alexnet": alexnet,
    "alexnet_half": alexnet_half,
    "resnet32": resnet32,
    "resnet20": resnet20,
}


def build(name: str, input_shape: Sequence[int], num_classes: int) -> keras.Model:
    """Builds the model called ``name`` for ``input_shape`` images and ``num_classes``."""
    if name not in BUILDERS:
        raise ConfigError(f"unknown model {name!r}; choose one of {sorted(BUILDERS)}")
    return BUILDERS[name](tuple(input_shape), int(num_classes))


__all__ = ["BUILDERS", "build"] + sorted(BUILDERS)
