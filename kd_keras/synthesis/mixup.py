"""MixUp synthesis (FS-BBT step 2): convex mixes of pairs of real images.

Pairs (i, j) and lambda ~ Beta(alpha, alpha) are drawn with stateless TF random ops, so a
seed gives the same images on every run (and a resumed run finds them in the answer
cache). Lambda is rounded to ``decimals``; pairs with lambda <= low or >= high are
near-copies of one real image and are dropped.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from kd_keras.data.rows import ImageRows, gather, quantize
from kd_keras.errors import ConfigError
from kd_keras.synthesis.base import IndexedCandidates, Synthesizer, register


@dataclasses.dataclass
class MixupPlan:
    """The pairs and weights of the MixUp images to make, and how many candidates dropped."""

    first: np.ndarray
    second: np.ndarray
    lam: np.ndarray
    dropped: int

    def __len__(self) -> int:
        return int(len(self.lam))

    def subset(self, index: np.ndarray) -> "MixupPlan":
        """The pairs at ``index`` (the dropped count is kept as information)."""
        return MixupPlan(self.first[index], self.second[index], self.lam[index], self.dropped)


def sample_lambdas(count: int, alpha: float, decimals: int, seed) -> tf.Tensor:
    """``count`` draws of Beta(alpha, alpha), rounded to ``decimals`` (stateless)."""
    seeds = tf.random.split(tf.constant(seed, tf.int64, shape=[2]), 2)
    g1 = tf.random.stateless_gamma([count], seeds[0], alpha=alpha)
    g2 = tf.random.stateless_gamma([count], seeds[1], alpha=alpha)
    lam = g1 / (g1 + g2)
    scale = 10.0 ** decimals
    return tf.round(lam * scale) / scale


def plan_mixup(n_real: int, candidates: int, *, alpha: float = 1.0, decimals: int = 2,
               low: float = 0.05, high: float = 0.95, seed: int = 0,
               fill: bool = False) -> MixupPlan:
    """Draws ``candidates`` pairs and keeps those with low < lambda < high.

    With ``fill`` the dropped ones are replaced by further draws, so the plan holds
    exactly ``candidates`` pairs; without it (the paper's rule) the dropped count is
    reported so another generator (the CVAE) can make up the difference.
    """
    if n_real < 2:
        raise ConfigError("MixUp needs at least two real images")
    if not 0.0 <= low < high <= 1.0:
        raise ConfigError(f"MixUp thresholds must satisfy 0 <= low < high <= 1, got {low}, {high}")
    firsts, seconds, lams, dropped, round_ = [], [], [], 0, 0
    while True:
        want = candidates if round_ == 0 else candidates - sum(len(l) for l in lams)
        if want <= 0 or (round_ > 0 and not fill):
            break
        s = tf.random.split(tf.constant([seed, round_], tf.int64), 3)
        lam = sample_lambdas(want, alpha, decimals, s[0]).numpy()
        i = tf.random.stateless_uniform([want], s[1], 0, n_real, dtype=tf.int64).numpy()
        off = tf.random.stateless_uniform([want], s[2], 1, n_real, dtype=tf.int64).numpy()
        j = (i + off) % n_real  # a different image from i
        keep = (lam > low) & (lam < high)
        firsts.append(i[keep]), seconds.append(j[keep]), lams.append(lam[keep].astype(np.float32))
        if round_ == 0:
            dropped = int((~keep).sum())
        round_ += 1
        if round_ > 1000:
            raise ConfigError("MixUp thresholds drop almost every pair; widen low/high")
    if not firsts:  # no pairs asked for
        return MixupPlan(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32), 0)
    return MixupPlan(np.concatenate(firsts), np.concatenate(seconds), np.concatenate(lams), dropped)


def mix(real, first: tf.Tensor, second: tf.Tensor, lam: tf.Tensor) -> tf.Tensor:
    """``lam * real[first] + (1 - lam) * real[second]`` for a batch of pairs (vectorised);
    ``real`` is :class:`kd_keras.data.rows.ImageRows` or a tensor."""
    lam = tf.reshape(tf.cast(lam, tf.float32), [-1, 1, 1, 1])
    return quantize(lam * gather(real, first) + (1.0 - lam) * gather(real, second))


def mix_numpy(real, first: np.ndarray, second: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """:func:`mix` in NumPy over :class:`kd_keras.data.rows.ImageRows`, as uint8 levels:
    the same float32 operations in the same order (each rounded as TF rounds it), so
    ``levels / 255`` is bit for bit what :func:`mix` makes (tests/test_store.py)."""
    lam = np.asarray(lam, np.float32).reshape(-1, 1, 1, 1)
    mixed = lam * real.rows(first) + (np.float32(1.0) - lam) * real.rows(second)
    return np.round(mixed * np.float32(255.0)).astype(np.uint8)


def mixup_dataset(real: np.ndarray, plan: MixupPlan, batch_size: int = 1024) -> tf.data.Dataset:
    """A tf.data pipeline yielding batches of the planned MixUp images, made on the fly."""
    rows = ImageRows(real)
    ds = tf.data.Dataset.from_tensor_slices((plan.first, plan.second, plan.lam)).batch(batch_size)
    return ds.map(lambda i, j, l: mix(rows, i, j, l), num_parallel_calls=tf.data.AUTOTUNE,
                  deterministic=True)


@register("mixup")
class MixupSynthesizer(Synthesizer):
    """MixUp as a generator: candidates are planned pairs and weights (``config.mixup``);
    images are mixed on the fly in tf.data. Needs no preparation beyond the real images."""

    def _plan_args(self) -> dict:
        m = self.config.mixup
        return dict(alpha=m.alpha, decimals=m.decimals, low=m.low, high=m.high)

    def prepare(self, ctx, real, real_probs) -> None:
        self.real = real

    def near_copies(self, count: int, n_real: int) -> int:
        return plan_mixup(n_real, count, seed=self.config.seed, fill=False,
                          **self._plan_args()).dropped

    def candidates(self, count: int, seed: int) -> IndexedCandidates:
        plan = plan_mixup(len(self.real), count, seed=seed, fill=True, **self._plan_args())
        return self.recipe(self.real, (plan.first, plan.second, plan.lam))

    def recipe(self, real, params) -> IndexedCandidates:
        return IndexedCandidates(params, lambda i, j, lam: mix(real, i, j, lam),
                                 numpy_batch=lambda i, j, lam: mix_numpy(real, i, j, lam))
