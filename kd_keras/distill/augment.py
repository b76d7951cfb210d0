"""Label-preserving augmentation of the student's training images.

A teacher's answer for an image is reused for its slightly shifted (and, where the classes
allow it, mirrored) copies: the student sees more variety at no query cost. This assumes
the teacher's answer does not change under these small transformations, which holds for
centred objects such as Fashion-MNIST's; mirroring is wrong for digits, so it is a choice.
"""

from __future__ import annotations

from typing import Optional

import keras
import tensorflow as tf

from kd_keras.errors import ConfigError

AUGMENTATIONS = ("none", "shift", "flip_shift")


def augmentation(name: str, shift: float = 0.1, seed: int = 0) -> Optional[keras.Sequential]:
    """The named augmentation as Keras preprocessing layers, or None for ``"none"``.

    ``shift`` is the largest translation as a fraction of height and width.
    """
    if name not in AUGMENTATIONS:
        raise ConfigError(f"unknown student.augment {name!r}: choose one of {AUGMENTATIONS}")
    if name == "none":
        return None
    layers = [keras.layers.RandomTranslation(shift, shift, fill_mode="nearest", seed=seed)]
    if name == "flip_shift":
        layers.insert(0, keras.layers.RandomFlip("horizontal", seed=seed + 1))
    return keras.Sequential(layers, name=f"augment_{name}")


def augment_dataset(dataset: tf.data.Dataset, name: str, shift: float = 0.1,
                    seed: int = 0) -> tf.data.Dataset:
    """Applies the named augmentation to the images of batched ``(images, targets)``."""
    layers = augmentation(name, shift, seed)
    if layers is None:
        return dataset
    return dataset.map(lambda x, y: (layers(x, training=True), y),
                       num_parallel_calls=tf.data.AUTOTUNE)
