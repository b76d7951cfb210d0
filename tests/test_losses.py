"""Distillation losses, checked by hand, and a new loss as one registered class."""

import numpy as np
import pytest
import tensorflow as tf

from kd_keras import models
from kd_keras.distill import Distiller, kl_with_temperature, soft_cross_entropy
from kd_keras.distill.losses import hard_cross_entropy
from kd_keras.errors import ConfigError

PROBS = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], np.float32)


LOGITS = np.array([[2.0, 1.0, 0.0], [0.0, 0.5, 1.5]], np.float32)


def test_soft_cross_entropy_by_hand():
    q = np.exp(LOGITS) / np.exp(LOGITS).sum(1, keepdims=True)
    expected = -(PROBS * np.log(q)).sum(1)
    np.testing.assert_allclose(soft_cross_entropy(PROBS, LOGITS), expected, rtol=1e-5)


def test_kl_with_temperature_by_hand():
    t = 4.0
    probs, logits = PROBS.astype(np.float64), LOGITS.astype(np.float64)
    p = probs ** (1 / t) / (probs ** (1 / t)).sum(1, keepdims=True)  # softmax(log p / T)
    q = np.exp(logits / t) / np.exp(logits / t).sum(1, keepdims=True)
    expected = t * t * (p * np.log(p / q)).sum(1)
    # float32 KL of near distributions cancels: ~1e-6 absolute error, depending on the CPU.
    np.testing.assert_allclose(kl_with_temperature(PROBS, LOGITS, t), expected, rtol=1e-5, atol=2e-6)
    assert float(kl_with_temperature(PROBS, np.log(PROBS), 1.0)[0]) == pytest.approx(0, abs=1e-6)


def test_hard_cross_entropy_by_hand():
    q = np.exp(LOGITS) / np.exp(LOGITS).sum(1, keepdims=True)
    np.testing.assert_allclose(hard_cross_entropy(PROBS, LOGITS),
                               [-np.log(q[0, 0]), -np.log(q[1, 2])], rtol=1e-5)


def test_smoothed_cross_entropy_by_hand():
    """Top-1 class of the teacher, smoothed: 0.9 + 0.1/3 on it, 0.1/3 on the others."""
    from kd_keras.distill.losses import get_loss

    q = np.exp(LOGITS) / np.exp(LOGITS).sum(1, keepdims=True)
    target = np.full((2, 3), 0.1 / 3)
    target[0, 0] += 0.9
    target[1, 2] += 0.9
    loss = get_loss("smooth_ce", label_smoothing=0.1)
    np.testing.assert_allclose(loss(PROBS, LOGITS), -(target * np.log(q)).sum(1), rtol=1e-5)
    assert get_loss("smooth_ce", label_smoothing=0.0)(PROBS, LOGITS).numpy() == pytest.approx(
        hard_cross_entropy(PROBS, LOGITS).numpy(), rel=1e-6)
    with pytest.raises(ConfigError):
        get_loss("smooth_ce", label_smoothing=1.0)


def test_a_new_loss_is_one_registered_class():
    from kd_keras.distill import DistillationLoss, get_loss, loss_names, register_loss

    @register_loss("squared_test")
    class Squared(DistillationLoss):
        def compute_loss(self, teacher_probs, student_logits):
            return tf.reduce_sum((tf.nn.softmax(student_logits) - teacher_probs) ** 2, -1)

    assert "squared_test" in loss_names()
    loss = get_loss("squared_test")
    q = tf.nn.softmax(LOGITS).numpy()
    np.testing.assert_allclose(loss(PROBS, LOGITS), ((q - PROBS) ** 2).sum(1), rtol=1e-5)
    d = Distiller(models.build("lenet5_half", (28, 28, 1), 10), loss=loss)
    assert d.loss_name == "squared_test"
    with pytest.raises(ConfigError, match="temperature > 0"):
        get_loss("kl", temperature=0.0)
