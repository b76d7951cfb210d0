"""Warps of the real images as a generator: each a real image turned, scaled and shifted a
little (and mirrored, if asked), then paid for like any synthetic image.

A free augmentation (:mod:`kd_keras.distill.augment`) reuses the original's answer, so it
needs a teacher that keeps its class under the change (:mod:`kd_keras.distill.augment_check`);
a warp is sent to the teacher and comes with the teacher's own answer, whatever it is. Warps
stay near the real images (the data the student will see) where CutMix's are collages.
What they are worth beside CutMix is measured (docs/RESULTS.md), not assumed.
Settings: ``config.warp``.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from kd_keras.data.rows import gather, quantize
from kd_keras.errors import ConfigError
from kd_keras.synthesis.base import IndexedCandidates, Synthesizer, register


def plan_warps(n_real: int, count: int, height: int, width: int, *, rotation: float = 15.0,
               scale: float = 0.1, shift: float = 0.1, flip: float = 0.0,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(source index, projective transform) for ``count`` warps: angles uniform in
    +-``rotation`` degrees, scales in 1 +- ``scale``, shifts in +-``shift`` of the side,
    mirrored with probability ``flip``. Each transform maps an output pixel (x, y) to the
    input pixel it reads, as :func:`tf.raw_ops.ImageProjectiveTransformV3` takes it."""
    if n_real < 1:
        raise ConfigError("warps need at least one real image")
    if not (0 <= rotation <= 180 and 0 <= scale < 1 and 0 <= shift < 1 and 0 <= flip <= 1):
        raise ConfigError("warp settings out of range: rotation in [0, 180] degrees, scale and "
                          f"shift in [0, 1), flip in [0, 1]; got {rotation}, {scale}, {shift}, "
                          f"{flip}")
    rng = np.random.default_rng([seed, 7331])
    source = rng.integers(0, n_real, count)
    angle = np.deg2rad(rng.uniform(-rotation, rotation, count))
    zoom = rng.uniform(1.0 - scale, 1.0 + scale, count)
    ty, tx = rng.uniform(-shift, shift, (2, count)) * np.array([[height], [width]])
    mirrored = rng.random(count) < flip
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    # input = M (output - centre - t) + centre, M the inverse of the zoomed rotation
    m00, m01 = np.cos(angle) / zoom, np.sin(angle) / zoom
    m10, m11 = -np.sin(angle) / zoom, np.cos(angle) / zoom
    a0, a1 = m00, m01
    a2 = cx - m00 * (cx + tx) - m01 * (cy + ty)
    b0, b1 = m10, m11
    b2 = cy - m10 * (cx + tx) - m11 * (cy + ty)
    a0, a1, a2 = (np.where(mirrored, -v, v) for v in (a0, a1, a2))
    a2 = np.where(mirrored, (width - 1) + a2, a2)  # x_in -> (width - 1) - x_in
    zeros = np.zeros(count)
    transforms = np.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1).astype(np.float32)
    return source.astype(np.int64), transforms


def warp(real, source: tf.Tensor, transforms: tf.Tensor) -> tf.Tensor:
    """``real[source]`` warped by ``transforms`` (bilinear; the edge pixels extend past the
    border), on 8-bit levels like every image sent; ``real`` is
    :class:`kd_keras.data.rows.ImageRows` or a tensor."""
    images = gather(real, source)
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=tf.cast(transforms, tf.float32),
        output_shape=tf.shape(images)[1:3], fill_value=0.0, interpolation="BILINEAR",
        fill_mode="NEAREST")
    out.set_shape(images.shape)  # the op drops the known height and width
    return quantize(tf.clip_by_value(out, 0.0, 1.0))


@register("warp")
class WarpSynthesizer(Synthesizer):
    """Warps of real images; transforms are planned with a seeded NumPy generator and
    applied on the fly in tf.data."""

    def prepare(self, ctx, real, real_probs) -> None:
        self.real = real

    def candidates(self, count: int, seed: int) -> IndexedCandidates:
        c = self.config.warp
        height, width = self.real.shape[:2]
        params = plan_warps(len(self.real), count, height, width, rotation=c.rotation,
                            scale=c.scale, shift=c.shift, flip=c.flip, seed=seed)
        return self.recipe(self.real, params)

    def recipe(self, real, params) -> IndexedCandidates:
        return IndexedCandidates(params, lambda *p: warp(real, *p))


__all__ = ["WarpSynthesizer", "plan_warps", "warp"]
