"""Distillation losses: teacher probabilities against student logits, one value per image.

Each loss is a small class in the manner of Keras's ``DistillationLoss``: arguments checked
in the constructor, ``compute_loss(teacher_probs, student_logits)`` and ``get_config``.
A registry maps ``student.loss`` names to them; a new loss is one class with
``@register_loss("name")`` and one test.
"""

from __future__ import annotations

import inspect
from typing import Callable

import tensorflow as tf

from kd_keras.errors import ConfigError
from kd_keras.registry import Registry

LOSSES = Registry("distillation loss")


def register_loss(name: str) -> Callable[[type["DistillationLoss"]], type["DistillationLoss"]]:
    """Class decorator adding a loss to :data:`LOSSES` as ``name``."""
    return LOSSES.register(name)


class DistillationLoss:
    """Base class: ``compute_loss`` returns the per-example loss ``[batch]``."""

    name = ""

    def compute_loss(self, teacher_probs: tf.Tensor, student_logits: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def __call__(self, teacher_probs, student_logits):
        return self.compute_loss(tf.convert_to_tensor(teacher_probs),
                                 tf.convert_to_tensor(student_logits))

    def get_config(self) -> dict:
        return {}


@register_loss("soft_ce")
class SoftCrossEntropy(DistillationLoss):
    """``-sum_c p_c log softmax(z)_c``: the paper's loss on the teacher's soft labels."""

    def compute_loss(self, teacher_probs, student_logits):
        logq = tf.nn.log_softmax(student_logits)
        return -tf.reduce_sum(tf.cast(teacher_probs, logq.dtype) * logq, axis=-1)


@register_loss("kl")
class KLWithTemperature(DistillationLoss):
    """``T^2 KL(p^T || softmax(z / T))`` (Hinton et al.); ``p^T`` is the teacher softened
    by T from its probabilities (log p plays the role of its logits)."""

    def __init__(self, temperature: float = 4.0):
        if not temperature > 0:
            raise ConfigError(f"the KL loss needs a temperature > 0, got {temperature}")
        self.temperature = float(temperature)

    def compute_loss(self, teacher_probs, student_logits):
        t = tf.cast(self.temperature, student_logits.dtype)
        probs = tf.cast(teacher_probs, student_logits.dtype)
        p = tf.nn.softmax(tf.math.log(tf.maximum(probs, 1e-12)) / t)
        log_q = tf.nn.log_softmax(student_logits / t)
        return t * t * tf.reduce_sum(p * (tf.math.log(tf.maximum(p, 1e-12)) - log_q), axis=-1)

    def get_config(self):
        return {"temperature": self.temperature}


@register_loss("hard_ce")
class HardCrossEntropy(DistillationLoss):
    """Cross-entropy on the teacher's top-1 class (for label-only teachers)."""

    def compute_loss(self, teacher_probs, student_logits):
        labels = tf.argmax(teacher_probs, axis=-1)
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=student_logits)


@register_loss("smooth_ce")
class SmoothedCrossEntropy(DistillationLoss):
    """Cross-entropy on the teacher's top-1 class with label smoothing (Szegedy et al.,
    2016): the target keeps ``1 - label_smoothing`` on that class and spreads the rest
    evenly, so a label-only teacher's answers are not taken as certain."""

    def __init__(self, label_smoothing: float = 0.1):
        if not 0 <= label_smoothing < 1:
            raise ConfigError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)

    def compute_loss(self, teacher_probs, student_logits):
        classes = tf.shape(teacher_probs)[-1]
        target = tf.one_hot(tf.argmax(teacher_probs, axis=-1), classes, dtype=student_logits.dtype)
        eps = tf.cast(self.label_smoothing, student_logits.dtype)
        target = target * (1 - eps) + eps / tf.cast(classes, student_logits.dtype)
        return -tf.reduce_sum(target * tf.nn.log_softmax(student_logits), axis=-1)

    def get_config(self):
        return {"label_smoothing": self.label_smoothing}


def loss_names() -> tuple[str, ...]:
    """The registered loss names."""
    return tuple(LOSSES.names())


def loss_takes(name: str, setting: str) -> bool:
    """Whether the loss registered as ``name`` takes ``setting`` (e.g. ``temperature``)."""
    return setting in inspect.signature(LOSSES.lookup(name)).parameters


def get_loss(name: str, temperature: float = 4.0, **settings) -> DistillationLoss:
    """The loss registered as ``name``, given those of ``temperature`` and ``settings``
    (e.g. ``label_smoothing``) that its constructor takes."""
    given = {"temperature": temperature, **settings}
    return LOSSES.lookup(name)(**{k: v for k, v in given.items() if loss_takes(name, k)})


# Plain functions, kept for callers that want one loss directly.
def soft_cross_entropy(teacher_probs, student_logits):
    return SoftCrossEntropy()(teacher_probs, student_logits)


def kl_with_temperature(teacher_probs, student_logits, temperature: float):
    return KLWithTemperature(temperature)(teacher_probs, student_logits)


def hard_cross_entropy(teacher_probs, student_logits):
    return HardCrossEntropy()(teacher_probs, student_logits)
