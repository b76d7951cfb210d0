"""CutMix (Yun et al., ICCV 2019) as a generator: a box of one real image pasted into another.

For a pair (i, j), lambda ~ Beta(alpha, alpha) sets the box: sides ``sqrt(1 - lambda)``
of the image's, centred uniformly at random and clipped to the image, so about
``1 - lambda`` of the pixels come from image j. The teacher labels the result, so no label
mixing is needed. Boxes covering less than ``low`` or more than ``high`` of the image are
near-copies of one real image and are redrawn, and so are boxes that change no pixel (blank
background pasted on blank background: 3 % of MNIST's draws), which would be copies of a
real image, answered from the cache, and leave their share of the budget unspent.
Settings: ``config.cutmix``.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from kd_keras.data.rows import gather
from kd_keras.errors import ConfigError
from kd_keras.synthesis.base import IndexedCandidates, Synthesizer, register


def plan_cutmix(n_real: int, count: int, height: int, width: int, *, alpha: float = 1.0,
                low: float = 0.05, high: float = 0.95, seed: int = 0) -> tuple[np.ndarray, ...]:
    """(first, second, top, left, box_height, box_width) for ``count`` CutMix images."""
    if n_real < 2:
        raise ConfigError("CutMix needs at least two real images")
    if not 0.0 <= low < high <= 1.0:
        raise ConfigError(f"CutMix thresholds must satisfy 0 <= low < high <= 1, got {low}, {high}")
    rng = np.random.default_rng([seed, 1701])
    out: list[list[np.ndarray]] = [[] for _ in range(6)]
    need, rounds = count, 0
    while need > 0:
        lam = rng.beta(alpha, alpha, need)
        cut = np.sqrt(1.0 - lam)
        cy, cx = rng.integers(0, height, need), rng.integers(0, width, need)
        bh, bw = np.round(height * cut).astype(np.int64), np.round(width * cut).astype(np.int64)
        top, left = np.clip(cy - bh // 2, 0, height), np.clip(cx - bw // 2, 0, width)
        bottom, right = np.clip(cy + bh // 2, 0, height), np.clip(cx + bw // 2, 0, width)
        area = (bottom - top) * (right - left) / float(height * width)
        first = rng.integers(0, n_real, need)
        second = (first + rng.integers(1, n_real, need)) % n_real
        keep = (area > low) & (area < high)
        for column, values in zip(out, (first, second, top, left, bottom - top, right - left)):
            column.append(values[keep])
        need -= int(keep.sum())
        rounds += 1
        if rounds > 1000:
            raise ConfigError("CutMix thresholds drop almost every box; widen low/high")
    return tuple(np.concatenate(c)[:count].astype(np.int64) for c in out)


def cut_and_paste(real, first, second, top, left, box_h, box_w) -> tf.Tensor:
    """``real[first]`` with the box (top, left, box_h, box_w) taken from ``real[second]``;
    ``real`` is :class:`kd_keras.data.rows.ImageRows` or a tensor."""
    base, patch = gather(real, first), gather(real, second)
    height, width = tf.shape(base)[1], tf.shape(base)[2]
    rows = tf.range(height, dtype=tf.int64)[None, :, None]
    cols = tf.range(width, dtype=tf.int64)[None, None, :]
    inside = ((rows >= top[:, None, None]) & (rows < (top + box_h)[:, None, None])
              & (cols >= left[:, None, None]) & (cols < (left + box_w)[:, None, None]))
    return tf.where(inside[..., None], patch, base)


def cut_and_paste_numpy(real, first, second, top, left, box_h, box_w) -> np.ndarray:
    """:func:`cut_and_paste` in NumPy over :class:`kd_keras.data.rows.ImageRows`, in the
    rows' own dtype: the same pixels (a box is copied, nothing is computed)."""
    base, patch = real.raw(first), real.raw(second)
    rows = np.arange(base.shape[1])[None, :, None]
    cols = np.arange(base.shape[2])[None, None, :]
    inside = ((rows >= top[:, None, None]) & (rows < (top + box_h)[:, None, None])
              & (cols >= left[:, None, None]) & (cols < (left + box_w)[:, None, None]))
    return np.where(inside[..., None], patch, base)


def unchanged(real, params: tuple, chunk_bytes: int = 1 << 20) -> np.ndarray:
    """Which CutMix images are pixel for pixel their first image (the box changed nothing),
    checked a chunk of about ``chunk_bytes`` at a time."""
    first = params[0]
    step = max(1, chunk_bytes // max(1, int(np.prod(real.shape))))
    out = np.zeros(len(first), bool)
    for i in range(0, len(first), step):
        part = [p[i:i + step] for p in params]
        made = cut_and_paste_numpy(real, *part)
        out[i:i + step] = np.all((made == real.raw(part[0])).reshape(len(made), -1), axis=1)
    return out


@register("cutmix")
class CutMixSynthesizer(Synthesizer):
    """CutMix pairs of real images; boxes are planned with a seeded NumPy generator and
    pasted on the fly in tf.data."""

    def prepare(self, ctx, real, real_probs) -> None:
        self.real = real

    def candidates(self, count: int, seed: int) -> IndexedCandidates:
        c = self.config.cutmix
        height, width = self.real.shape[:2]

        def plan(n: int, stream: int) -> tuple:
            return plan_cutmix(len(self.real), n, height, width, alpha=c.alpha, low=c.low,
                               high=c.high, seed=stream)

        params = plan(count, seed)
        for redraw in range(1, 51):  # the same seed always gives the same candidates
            copies = unchanged(self.real, params)
            if not copies.any():
                break
            for column, fresh in zip(params, plan(int(copies.sum()), (seed + 1) * 100003 + redraw)):
                column[copies] = fresh
        return self.recipe(self.real, params)

    def recipe(self, real, params) -> IndexedCandidates:
        return IndexedCandidates(params, lambda *p: cut_and_paste(real, *p),
                                 numpy_batch=lambda *p: cut_and_paste_numpy(real, *p))
