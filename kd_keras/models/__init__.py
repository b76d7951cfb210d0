"""Models built by name; every model outputs logits: the paper's teacher/student pairs,
``keras.applications`` students (``mobilenet_v3_small``, ``efficientnet_b0``, …) and a
user's own model as ``keras:PATH.keras``."""

from __future__ import annotations

from typing import Callable, Sequence

import keras

from kd_keras.errors import ConfigError
from kd_keras.models.alexnet import alexnet, alexnet_half
from kd_keras.models.lenet import lenet5, lenet5_half
from kd_keras.models.resnet import resnet20, resnet32
from kd_keras.models.zoo import APPLICATIONS, application, from_file

BUILDERS: dict[str, Callable[[Sequence[int], int], keras.Model]] = {
    "lenet5": lenet5,
    "lenet5_half": lenet5_half,
    "alexnet": alexnet,
    "alexnet_half": alexnet_half,
    "resnet32": resnet32,
    "resnet20": resnet20,
}


def names() -> list[str]:
    """Every model name ``build`` accepts (besides ``keras:PATH.keras``)."""
    return sorted(BUILDERS) + sorted(APPLICATIONS)


def is_known(name: str) -> bool:
    return name in BUILDERS or name in APPLICATIONS or name.startswith("keras:")


def build(name: str, input_shape: Sequence[int], num_classes: int) -> keras.Model:
    """Builds the model called ``name`` for ``input_shape`` images and ``num_classes``."""
    if name.startswith("keras:"):
        return from_file(name[len("keras:"):], input_shape, int(num_classes))
    if name in APPLICATIONS:
        return application(name, input_shape, int(num_classes))
    if name not in BUILDERS:
        raise ConfigError(f"unknown model {name!r}; choose one of {names()} or keras:PATH.keras")
    return BUILDERS[name](tuple(input_shape), int(num_classes))


__all__ = ["APPLICATIONS", "BUILDERS", "build", "is_known", "names"] + sorted(BUILDERS)
