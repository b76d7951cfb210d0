"""How selection picks the candidates to pay for, from a probe student's view of them.

A chooser is a function registered in :data:`CHOOSERS` (``synthesis.selection`` names it):
``chooser(view, count, known, balance) -> indices``. ``view`` is the probe's
:class:`ProbeView` of the candidates still unpaid, ``known`` its view of the images already
paid for (the real ones and earlier rounds'), and ``balance`` asks for about the same number
of candidates per class the probe predicts (DivBFKD's class balancing). Adding a chooser is
one function here or in a plug-in module, and one test.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from kd_keras.registry import Registry

CHOOSERS = Registry("selection")
Chooser = Callable[["ProbeView", int, "ProbeView", bool], np.ndarray]


@dataclasses.dataclass
class ProbeView:
    """The probe's class probabilities and features (its last hidden layer, or its logits
    where the model has no single one) for a set of images."""

    probs: np.ndarray
    features: np.ndarray

    def __len__(self) -> int:
        return len(self.probs)

    def take(self, index: np.ndarray) -> "ProbeView":
        return ProbeView(self.probs[index], self.features[index])

    @classmethod
    def join(cls, views: list["ProbeView"]) -> "ProbeView":
        return cls(np.concatenate([v.probs for v in views]),
                   np.concatenate([v.features for v in views]))


def _feature_model(probe: keras.Model) -> keras.Model:
    """(features, logits) of ``probe``: its second-to-last layer's output where the model is
    a graph of layers (all built-in students), else the logits twice (a user's subclass)."""
    try:
        hidden = probe.layers[-2].output
        return keras.Model(probe.inputs, [keras.ops.reshape(hidden, (-1, int(np.prod(
            hidden.shape[1:])))), probe.outputs[0]])
    except (AttributeError, IndexError, ValueError, TypeError):
        return keras.Model(probe.inputs, [probe.outputs[0], probe.outputs[0]]) \
            if getattr(probe, "inputs", None) else None


def probe_view(probe: keras.Model, images: tf.data.Dataset) -> ProbeView:
    """The probe's view of every batch of ``images`` (no teacher answers)."""
    model = _feature_model(probe)

    def look(x):  # eager: a few large batches a round, and no function traced per probe
        if model is None:
            z = tf.cast(probe(x, training=False), tf.float32)
            return tf.nn.softmax(z), z
        f, z = model(x, training=False)
        return tf.nn.softmax(tf.cast(z, tf.float32)), tf.cast(f, tf.float32)

    probs, feats = [], []
    for x in images:
        p, f = look(x)
        probs.append(p.numpy())
        feats.append(f.numpy())
    if not probs:
        return ProbeView(np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32))
    return ProbeView(np.concatenate(probs), np.concatenate(feats))


def entropy(probs: np.ndarray) -> np.ndarray:
    """Predictive entropy of each row of ``probs``."""
    return -np.sum(probs * np.log(np.clip(probs, 1e-12, 1.0)), axis=1)


def class_quotas(predicted: np.ndarray, count: int, num_classes: int) -> np.ndarray:
    """How many of ``count`` picks each predicted class gets: as equal as the candidates of
    each class allow (a class with too few gives its share to the others)."""
    have = np.bincount(predicted, minlength=num_classes)
    quota = np.zeros(num_classes, np.int64)
    left = min(count, int(have.sum()))
    while left > 0:
        open_ = np.flatnonzero(quota < have)
        share = max(1, left // len(open_))
        for c in open_:
            give = min(share, have[c] - quota[c], left)
            quota[c] += give
            left -= give
            if left == 0:
                break
    return quota


@CHOOSERS.register("uncertainty")
def uncertainty(view: ProbeView, count: int, known: ProbeView, balance: bool) -> np.ndarray:
    """The ``count`` candidates of highest predictive entropy (per predicted class with
    ``balance``): the images the probe is least sure of."""
    del known
    score = entropy(view.probs)
    order = np.argsort(-score, kind="stable")
    if not balance:
        return np.sort(order[:count])
    predicted = view.probs.argmax(1)
    quota = class_quotas(predicted, count, view.probs.shape[1])
    picks = [order[predicted[order] == c][:quota[c]] for c in range(len(quota))]
    return np.sort(np.concatenate(picks))


def _min_sq_distance(points: np.ndarray, centers: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Each point's squared distance to its nearest center (inf without centers)."""
    out = np.full(len(points), np.inf, np.float32)
    if len(centers) == 0:
        return out
    c2 = np.sum(centers ** 2, axis=1)
    for i in range(0, len(points), chunk):
        p = points[i:i + chunk]
        d = np.sum(p ** 2, axis=1)[:, None] - 2.0 * p @ centers.T + c2[None, :]
        out[i:i + chunk] = np.maximum(d.min(axis=1), 0.0)
    return out


@CHOOSERS.register("kcenter")
def kcenter(view: ProbeView, count: int, known: ProbeView, balance: bool) -> np.ndarray:
    """Greedy k-center (core-set) selection in the probe's feature space: each pick is the
    candidate farthest from everything paid for or picked, so the images paid for cover
    the candidates instead of crowding where the student already knows the answer. With
    ``balance`` a class stops being picked once it has its quota."""
    feats = np.asarray(view.features, np.float32)
    dist = _min_sq_distance(feats, np.asarray(known.features, np.float32))
    eligible = np.ones(len(feats), bool)
    predicted = view.probs.argmax(1)
    quota = class_quotas(predicted, count, view.probs.shape[1]) if balance else None
    taken = np.zeros(len(quota), np.int64) if balance else None
    picks = []
    for _ in range(min(count, len(feats))):
        masked = np.where(eligible, dist, -1.0)
        j = int(np.argmax(masked))
        if masked[j] < 0:
            break
        picks.append(j)
        eligible[j] = False
        dist = np.minimum(dist, np.sum((feats - feats[j]) ** 2, axis=1))
        if balance:
            taken[predicted[j]] += 1
            if taken[predicted[j]] >= quota[predicted[j]]:
                eligible &= predicted != predicted[j]
    return np.sort(np.asarray(picks, np.int64))


def names() -> tuple[str, ...]:
    """The registered choosers."""
    return tuple(CHOOSERS.names())


__all__ = ["CHOOSERS", "ProbeView", "class_quotas", "entropy", "kcenter", "names",
           "probe_view", "uncertainty"]
