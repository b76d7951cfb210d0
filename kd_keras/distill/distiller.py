"""The Distiller: a keras.Model that trains a student on a teacher's probabilities."""

from __future__ import annotations

import keras
import tensorflow as tf

from kd_keras.distill.losses import LOSSES, per_example_loss
from kd_keras.errors import ConfigError
from kd_keras.strategy import MultiWorkerFit


class Distiller(MultiWorkerFit, keras.Model):
    """Wraps ``student`` (a logits model); ``fit`` on (images, teacher probabilities).

    ``train_step`` computes the chosen loss per example and averages it over the *global*
    batch, so gradients summed across replicas of a tf.distribute strategy equal those of
    one device. ``test_step`` takes probabilities or integer labels as targets and reports
    top-1 agreement with them.
    """

    def __init__(self, student: keras.Model, loss: str = "soft_ce", temperature: float = 4.0,
                 **kwargs):
        super().__init__(**kwargs)
        if loss not in LOSSES:
            raise ConfigError(f"unknown distillation loss {loss!r}; choose one of {LOSSES}")
        self.student, self.loss_name, self.temperature = student, loss, float(temperature)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.agreement = keras.metrics.SparseCategoricalAccuracy(name="agreement")
        self.built = student.built  # a functional student is built: checkpoints can load

    def get_config(self):
        return {**super().get_config(), "loss": self.loss_name, "temperature": self.temperature,
                "student": keras.saving.serialize_keras_object(self.student)}

    @classmethod
    def from_config(cls, config):
        config["student"] = keras.saving.deserialize_keras_object(config["student"])
        return cls(**config)

    @property
    def metrics(self):
        return [self.loss_tracker, self.agreement]

    def call(self, images, training=False):
        return self.student(images, training=training)

    def train_step(self, data):
        images, teacher_probs = data
        with tf.GradientTape() as tape:
            logits = self.student(images, training=True)
            per_example = per_example_loss(self.loss_name, teacher_probs, logits, self.temperature)
            loss = tf.nn.compute_average_loss(per_example)
        grads = tape.gradient(loss, self.student.trainable_variables)
        self.optimizer.apply(grads, self.student.trainable_variables)
        self.loss_tracker.update_state(per_example)
        self.agreement.update_state(tf.argmax(teacher_probs, -1), logits)
        return self.logs()

    def test_step(self, data):
        images, targets = data
        logits = self.student(images, training=False)
        if targets.shape.rank == 2:  # probabilities: compare with their top-1
            self.loss_tracker.update_state(
                per_example_loss(self.loss_name, targets, logits, self.temperature))
            targets = tf.argmax(targets, -1)
        self.agreement.update_state(targets, logits)
        return self.logs()
