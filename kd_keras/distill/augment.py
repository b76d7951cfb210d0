"""Augmentation of the student's training batches at no query cost.

Label-preserving: a teacher's answer for an image is reused for its slightly shifted (and,
where the classes allow it, mirrored) copies. This assumes the teacher's answer does not
change under these small transformations, which holds for centred objects such as
Fashion-MNIST's; mirroring is wrong for digits, so it is a choice.

Batch mixes: part of each batch is replaced by MixUp or CutMix mixes of two of its answered
images, with the same mix of their two answers as the target. The teacher was never asked
about these mixes, so the target is an approximation; what it is worth is measured
(docs/RESULTS.md). Fresh mixes (``unpaid.fresh``) are added to a batch instead, and the
first students answer them in the train step on the very image (:func:`fresh_mixes`).
"""

from __future__ import annotations

from typing import Optional

import keras
import tensorflow as tf

from kd_keras.errors import ConfigError

AUGMENTATIONS = ("none", "shift", "flip", "flip_shift")
AUTO = "auto"  # the student's default: follows from the images' channels
BATCH_MIXES = ("none", "mixup", "cutmix")
UNANSWERED = -1.0  # the targets of fresh mixes: answered by the first students in the step


def resolve(name: str, kept=frozenset()) -> str:
    """``auto`` as the rule says: the transformations (``"flip"``, ``"shift"``) in ``kept``,
    those the teacher said keep the class (:mod:`kd_keras.distill.augment_check`). Others
    as named."""
    if name != AUTO:
        return name
    return {(True, True): "flip_shift", (True, False): "flip", (False, True): "shift",
            (False, False): "none"}[("flip" in kept, "shift" in kept)]


def augmentation(name: str, shift: float = 0.1, seed: int = 0) -> Optional[keras.Sequential]:
    """The named augmentation as Keras preprocessing layers, or None for ``"none"``.

    ``shift`` is the largest translation as a fraction of height and width.
    """
    if name not in AUGMENTATIONS:
        raise ConfigError(f"unknown student.augment {name!r}: choose one of {AUGMENTATIONS}")
    if name == "none":
        return None
    layers = []
    if name in ("flip", "flip_shift"):
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed + 1))
    if name in ("shift", "flip_shift"):
        layers.append(keras.layers.RandomTranslation(shift, shift, fill_mode="nearest",
                                                     seed=seed))
    return keras.Sequential(layers, name=f"augment_{name}")


def augment_dataset(dataset: tf.data.Dataset, name: str, shift: float = 0.1,
                    seed: int = 0) -> tf.data.Dataset:
    """Applies the named augmentation to the images of batched ``(images, targets)``."""
    layers = augmentation(name, shift, seed)
    if layers is None:
        return dataset
    return dataset.map(lambda x, y: (layers(x, training=True), y),
                       num_parallel_calls=tf.data.AUTOTUNE)


def _beta(shape, seed, alpha: float) -> tf.Tensor:
    """Beta(alpha, alpha) samples from two stateless Gamma draws."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    a = tf.random.stateless_gamma(shape, seeds[0], alpha)
    b = tf.random.stateless_gamma(shape, seeds[1], alpha)
    return a / tf.maximum(a + b, 1e-12)


def _mixes(x: tf.Tensor, kind: str, alpha: float,
           seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """A mix of each image of ``x`` with a random partner of the batch: (the mixes, the share
    of each mix its own image gave, the partners' indices)."""
    from kd_keras.synthesis.cutmix import cut_and_paste

    n = tf.shape(x)[0]
    seeds = tf.random.experimental.stateless_split(seed, 4)
    partner = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seeds[0])
    lam = _beta([n], seeds[1], alpha)
    if kind == "mixup":
        w = tf.reshape(lam, [-1, 1, 1, 1])
        return w * x + (1.0 - w) * tf.gather(x, partner), lam, partner
    # cutmix: a box of about 1 - lam of the image comes from the partner
    height, width = tf.shape(x)[1], tf.shape(x)[2]
    cut = tf.sqrt(1.0 - lam)
    bh = tf.cast(tf.round(tf.cast(height, tf.float32) * cut), tf.int64)
    bw = tf.cast(tf.round(tf.cast(width, tf.float32) * cut), tf.int64)
    h64, w64 = tf.cast(height, tf.int64), tf.cast(width, tf.int64)
    cy = tf.random.stateless_uniform([n], seeds[2], 0, h64, dtype=tf.int64)
    cx = tf.random.stateless_uniform([n], seeds[3], 0, w64, dtype=tf.int64)
    top, left = tf.clip_by_value(cy - bh // 2, 0, h64), tf.clip_by_value(cx - bw // 2, 0, w64)
    bottom = tf.clip_by_value(cy + bh // 2, 0, h64)
    right = tf.clip_by_value(cx + bw // 2, 0, w64)
    mixed = cut_and_paste(x, tf.range(n, dtype=tf.int64), partner, top, left,
                          bottom - top, right - left)
    own = 1.0 - tf.cast((bottom - top) * (right - left), tf.float32) / tf.cast(
        height * width, tf.float32)
    return mixed, own, partner


def _mix_batch(x: tf.Tensor, y: tf.Tensor, kind: str, share: float, alpha: float,
               seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Replaces about ``share`` of the batch by mixes of each image with a random partner;
    returns the images and their targets, mixed by the share of pixels each image gave."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    mixed, own, partner = _mixes(x, kind, alpha, seeds[0])
    chosen = tf.random.stateless_uniform([tf.shape(x)[0]], seeds[1]) < share
    own = tf.cast(own, y.dtype)[:, None]
    mixed_y = own * y + (1.0 - own) * tf.gather(y, partner)
    return (tf.where(chosen[:, None, None, None], mixed, x),
            tf.where(chosen[:, None], mixed_y, y))


def _fresh_batch(x: tf.Tensor, y: tf.Tensor, kind: str, share: float, alpha: float,
                 seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The batch with ``share`` x its size of mixes added, their targets
    :data:`UNANSWERED` (answered in the train step, :class:`~kd_keras.distill.distiller.Distiller`).
    The mixes are spread evenly among the answered rows, which keep their order: each device
    or worker takes a contiguous slice of a batch, so each gets its share of them."""
    n = tf.shape(x)[0]
    count = tf.cast(tf.round(tf.cast(n, tf.float32) * share), tf.int32)
    mixed = tf.tile(x, [(int(share) + 1), 1, 1, 1])  # partners and a share above 1
    mixed, _, _ = _mixes(mixed, kind, alpha, seed)
    unanswered = tf.fill([count, tf.shape(y)[1]], tf.cast(UNANSWERED, y.dtype))
    order = tf.argsort(tf.concat([_spread(n), _spread(count)], 0), stable=True)
    return (tf.gather(tf.concat([x, mixed[:count]], 0), order),
            tf.gather(tf.concat([y, unanswered], 0), order))


def _spread(n: tf.Tensor) -> tf.Tensor:
    """Where each of ``n`` rows falls in (0, 1) when spread evenly: sorting two such lists
    together interleaves them."""
    return (tf.cast(tf.range(n), tf.float32) + 0.5) / tf.cast(tf.maximum(n, 1), tf.float32)


def mix_batches(dataset: tf.data.Dataset, kind: str, share: float = 0.5, alpha: float = 1.0,
                seed: int = 0) -> tf.data.Dataset:
    """Batch mixes (module doc) on batched ``(images, targets)``; ``"none"`` returns it as is.

    Each batch draws its own mixes, new ones every epoch, from one seeded stream: runs
    repeat exactly.
    """
    if kind not in BATCH_MIXES:
        raise ConfigError(f"unknown student.batch_mix {kind!r}: choose one of {BATCH_MIXES}")
    if not 0.0 <= share <= 1.0 or alpha <= 0:
        raise ConfigError(f"student.batch_mix_share must be in [0, 1] and "
                          f"student.batch_mix_alpha > 0; got {share}, {alpha}")
    if kind == "none" or share == 0:
        return dataset
    draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    return tf.data.Dataset.zip(dataset, draws).map(
        lambda batch, draw: _mix_batch(*batch, kind, float(share), float(alpha),
                                       tf.stack([tf.constant(seed, tf.int64), draw])),
        num_parallel_calls=tf.data.AUTOTUNE)


def fresh_mixes(dataset: tf.data.Dataset, kind: str, share: float, alpha: float = 1.0,
                seed: int = 0) -> tf.data.Dataset:
    """Batched ``(images, targets)`` with ``share`` x the batch of new mixes (``"cutmix"`` or
    ``"mixup"``) of its images spread among its rows, their targets :data:`UNANSWERED`: the
    first students answer each on the very image the student sees (``unpaid.fresh``).
    ``share`` 0 returns the dataset as is."""
    if share == 0:
        return dataset
    if kind not in BATCH_MIXES[1:]:
        raise ConfigError(f"fresh mixes are mixup or cutmix, not {kind!r}")
    if share < 0 or alpha <= 0:
        raise ConfigError(f"unpaid.fresh must be >= 0 and the mix's alpha > 0; got {share}, "
                          f"{alpha}")
    draws = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True)
    return tf.data.Dataset.zip(dataset, draws).map(
        lambda batch, draw: _fresh_batch(*batch, kind, float(share), float(alpha),
                                         tf.stack([tf.constant(seed, tf.int64), draw])),
        num_parallel_calls=tf.data.AUTOTUNE)
