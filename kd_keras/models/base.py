"""The model registry: a name to a builder ``(input_shape, num_classes) -> keras.Model``
answering logits. A new model is one function with ``@MODELS.register("name")``."""

from kd_keras.registry import Registry

MODELS = Registry("model")
