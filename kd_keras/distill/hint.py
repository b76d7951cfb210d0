"""A feature hint from a first student (FitNets; ``unpaid.hint``): the second student's last
hidden layer, through a learned linear map, is pulled toward a first student's on every image
it trains on.

The first students are ours, so their hidden layers are free to read, unlike the teacher's.
Both feature vectors are L2-normalised before their squared distance is taken, so the
penalty (0-4 an image, times ``unpaid.hint``) does not depend on either model's scale. Only
the first first student is read, to keep the cost to one more forward pass a step. What it
is worth is measured (docs/EXPLORATIONS.md, BUILD.md), not assumed: at 50,000 answers on
Fashion-MNIST it gave no gain, so it is off by default.
"""

from __future__ import annotations

from typing import Optional

import keras
import tensorflow as tf

from kd_keras.errors import ConfigError


def last_hidden(model: keras.Model):
    """The symbolic input of ``model``'s last layer (its features before the logits), for a
    functional or Sequential model; raises ValueError for one that has none (subclassed)."""
    try:
        features, _ = model.layers[-1].input, model.input
    except (AttributeError, IndexError, ValueError, TypeError) as e:
        raise ValueError(f"{model.name} has no symbolic last hidden layer to read") from e
    return keras.layers.Flatten()(features) if len(features.shape) > 2 else features


def check(config, student: Optional[keras.Model] = None, why: str = "unpaid.count=0") -> None:
    """Raises ConfigError before any answer is bought when ``unpaid.hint`` cannot act: it needs
    first students (unpaid images) and a student whose last hidden layer can be read."""
    weight = float(config.unpaid.hint)
    if not weight:
        return
    if not config.unpaid.count:
        raise ConfigError(f"unpaid.hint={weight:g} needs the first students of unpaid images, "
                          f"but there are none ({why}); set unpaid.hint=0")
    if student is not None:
        try:
            last_hidden(student)
        except ValueError as e:
            raise ConfigError(f"unpaid.hint reads the student's last hidden layer: {e} (build "
                              "it with the functional API, or set unpaid.hint=0)") from None


class FeatureHint(keras.layers.Layer):
    """The hint's penalty per image; holds the map from the student's features to the
    labeller's (trained with the student) and reads the labeller without training it.

    Args:
      student: the student being distilled (logits; functional or Sequential).
      labeller: a trained first student (logits; functional or Sequential).
      weight: the penalty's weight, > 0.
    """

    def __init__(self, student: keras.Model, labeller: keras.Model, weight: float, **kwargs):
        super().__init__(**kwargs)
        if not weight > 0:
            raise ValueError(f"weight must be > 0, got {weight}")
        self.weight = float(weight)
        student_features = last_hidden(student)
        self.student_with_features = keras.Model(student.input,
                                                 [student_features, student.outputs[0]])
        self.labeller_features = keras.Model(labeller.input, last_hidden(labeller))
        self.labeller_features.trainable = False
        self.projection = keras.layers.Dense(int(self.labeller_features.outputs[0].shape[-1]),
                                             use_bias=False, name="hint_projection")
        self.projection.build((None, int(student_features.shape[-1])))

    def penalty(self, images, features):
        """``weight`` x the squared distance of the normalised projected ``features`` (the
        student's, on ``images``) from the labeller's normalised features, per image."""
        target = tf.stop_gradient(tf.math.l2_normalize(
            tf.cast(self.labeller_features(images, training=False), tf.float32), -1))
        guess = tf.math.l2_normalize(tf.cast(self.projection(features), tf.float32), -1)
        return self.weight * tf.reduce_sum(tf.square(guess - target), -1)


__all__ = ["FeatureHint", "check", "last_hidden"]
