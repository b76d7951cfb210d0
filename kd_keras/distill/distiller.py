"""The Distiller: a keras.Model that trains a student on a teacher's probabilities."""

from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf

from kd_keras.distill.hint import FeatureHint
from kd_keras.distill.losses import DistillationLoss, get_loss
from kd_keras.strategy import MultiWorkerFit


class Distiller(MultiWorkerFit, keras.Model):
    """Wraps ``student`` (a logits model); ``fit`` on (images, teacher probabilities).

    ``train_step`` computes the chosen loss per example and averages it over the *global*
    batch, so gradients summed across replicas of a tf.distribute strategy equal those of
    one device. The loss is scaled by the optimizer (``scale_loss``) before gradients are
    taken, so a ``mixed_float16`` policy's loss scaling works. ``test_step`` takes
    probabilities or integer labels as targets and reports top-1 agreement with them.

    Args:
      student: a Keras model answering logits.
      loss: a registered loss name (see :mod:`kd_keras.distill.losses`) or a
        :class:`DistillationLoss` object.
      temperature: for losses that take one (``kl``).
      labellers: trained models (logits) that answer, averaged, the examples whose
        targets are :data:`~kd_keras.distill.augment.UNANSWERED` (fresh mixes,
        ``unpaid.fresh``) on the very image the student sees; they are made non-trainable.
      hint: with labellers, the weight of a :class:`FeatureHint` from the first of them
        (``unpaid.hint``; 0 none): its penalty is added to each image's loss.
    """

    def __init__(self, student: keras.Model, loss: str | DistillationLoss = "soft_ce",
                 temperature: float = 4.0, labellers: Sequence[keras.Model] = (),
                 hint: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.labellers = list(labellers)
        for labeller in self.labellers:  # out of trainable_variables: fit's weight averaging
            labeller.trainable = False   # (ema) would otherwise write into them at the end
        self.distillation_loss = (loss if isinstance(loss, DistillationLoss)
                                  else get_loss(loss, temperature))
        self.student, self.temperature = student, float(temperature)
        self.loss_name = self.distillation_loss.name
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.agreement = keras.metrics.SparseCategoricalAccuracy(name="agreement")
        self.hint = (FeatureHint(student, self.labellers[0], hint, name="hint")
                     if hint and self.labellers else None)
        self.hint_tracker = keras.metrics.Mean(name="hint")
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
        return [self.loss_tracker, self.agreement] + ([self.hint_tracker] if self.hint else [])

    def call(self, images, training=False):
        return self.student(images, training=training)

    def answer_fresh(self, images, targets):
        """``targets`` with the :data:`UNANSWERED` rows replaced by the labellers' averaged
        probabilities for those images (no gradient flows into the labellers)."""
        if not self.labellers:
            return targets
        fresh = tf.where(targets[:, 0] < 0)  # UNANSWERED rows: only these are answered

        def answered():
            mixes = tf.gather_nd(images, fresh)
            answers = tf.add_n([tf.nn.softmax(tf.cast(m(mixes, training=False), tf.float32))
                                for m in self.labellers]) / float(len(self.labellers))
            return tf.tensor_scatter_nd_update(
                targets, fresh, tf.stop_gradient(tf.cast(answers, targets.dtype)))

        # a replica's slice may hold none, and TF's convolutions fail on an empty batch
        return tf.cond(tf.shape(fresh)[0] > 0, answered, lambda: targets)

    def train_step(self, data):
        images, teacher_probs = data
        teacher_probs = self.answer_fresh(images, teacher_probs)
        trained = self.student.trainable_variables + (
            self.hint.projection.trainable_variables if self.hint else [])
        with tf.GradientTape() as tape:
            if self.hint:
                features, logits = self.hint.student_with_features(images, training=True)
            else:
                logits = self.student(images, training=True)
            logits = tf.cast(logits, tf.float32)
            per_example = self.distillation_loss(teacher_probs, logits)
            if self.hint:
                penalty = self.hint.penalty(images, features)
                per_example = per_example + penalty
            loss = tf.nn.compute_average_loss(per_example)
            scaled = self.optimizer.scale_loss(loss)  # loss scaling under mixed_float16
        grads = tape.gradient(scaled, trained)
        self.optimizer.apply(grads, trained)
        self.loss_tracker.update_state(per_example)
        if self.hint:
            self.hint_tracker.update_state(penalty)
        self.agreement.update_state(tf.argmax(teacher_probs, -1), logits)
        return self.logs()

    def test_step(self, data):
        images, targets = data
        logits = tf.cast(self.student(images, training=False), tf.float32)
        if targets.shape.rank == 2:  # probabilities: compare with their top-1
            self.loss_tracker.update_state(self.distillation_loss(targets, logits))
            targets = tf.argmax(targets, -1)
        self.agreement.update_state(targets, logits)
        return self.logs()
