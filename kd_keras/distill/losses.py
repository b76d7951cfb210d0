"""Per-example distillation losses: teacher probabilities against student logits."""

from __future__ import annotations

import tensorflow as tf

from kd_keras.errors import ConfigError

LOSSES = ("soft_ce", "kl", "hard_ce")


def soft_cross_entropy(teacher_probs: tf.Tensor, student_logits: tf.Tensor) -> tf.Tensor:
    """``-sum_c p_c log softmax(z)_c``: the paper's loss on the teacher's soft labels."""
    return -tf.reduce_sum(teacher_probs * tf.nn.log_softmax(student_logits), axis=-1)


def kl_with_temperature(teacher_probs: tf.Tensor, student_logits: tf.Tensor,
                        temperature: float) -> tf.Tensor:
    """``T^2 KL(p^T || softmax(z / T))`` (Hinton et al.); ``p^T`` is the teacher softened
    by T from its probabilities (log p plays the role of its logits)."""
    t = tf.cast(temperature, student_logits.dtype)
    p = tf.nn.softmax(tf.math.log(tf.maximum(teacher_probs, 1e-12)) / t)
    log_q = tf.nn.log_softmax(student_logits / t)
    return t * t * tf.reduce_sum(p * (tf.math.log(tf.maximum(p, 1e-12)) - log_q), axis=-1)


def hard_cross_entropy(teacher_probs: tf.Tensor, student_logits: tf.Tensor) -> tf.Tensor:
    """Cross-entropy on the teacher's top-1 class (for label-only teachers)."""
    labels = tf.argmax(teacher_probs, axis=-1)
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=student_logits)


def per_example_loss(name: str, teacher_probs, student_logits, temperature: float = 4.0):
    """The loss called ``name`` (one of LOSSES), one value per example."""
    if name == "soft_ce":
        return soft_cross_entropy(teacher_probs, student_logits)
    if name == "kl":
        return kl_with_temperature(teacher_probs, student_logits, temperature)
    if name == "hard_ce":
        return hard_cross_entropy(teacher_probs, student_logits)
    raise ConfigError(f"unknown distillation loss {name!r}; choose one of {LOSSES}")
