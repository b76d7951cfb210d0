"""The warp generator: real images turned, scaled, shifted (mirrored), paid for like any."""

import numpy as np
import pytest
import tensorflow as tf

from kd_keras import data, synthesis
from kd_keras.data.rows import ImageRows
from kd_keras.distill.run import run_fsbbt
from kd_keras.errors import ConfigError
from kd_keras.synthesis.warp import plan_warps, warp
from kd_keras.teachers import CallableBackend, Teacher
from test_distill import tiny_config, toy_teacher


def _real(n=4, h=9, w=11):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, h, w, 1), dtype=np.uint8)


def test_no_warp_is_the_image_and_a_full_flip_is_its_mirror():
    real = _real()
    source, transforms = plan_warps(4, 20, 9, 11, rotation=0, scale=0, shift=0, seed=1)
    out = warp(ImageRows(real), source, transforms).numpy()
    np.testing.assert_array_equal(np.round(out * 255).astype(np.uint8), real[source])
    source, transforms = plan_warps(4, 20, 9, 11, rotation=0, scale=0, shift=0, flip=1.0, seed=1)
    out = warp(ImageRows(real), source, transforms).numpy()
    np.testing.assert_array_equal(np.round(out * 255).astype(np.uint8), real[source][:, :, ::-1])


def test_turns_are_about_the_centre_and_shifts_stay_within_the_setting():
    """A dot 4 pixels right of the centre stays 4 pixels from it under any turn (a turn about
    a corner would throw it off the image), at the drawn angle; a shift moves it at most
    ``shift`` of the side."""
    img = np.zeros((1, 21, 21, 1), np.float32)
    img[0, 10, 14] = 1.0
    source, t = plan_warps(1, 12, 21, 21, rotation=90, scale=0, shift=0, seed=0)
    out = warp(tf.constant(img), source, t).numpy()[..., 0]
    ys, xs = np.mgrid[:21, :21]
    mass = out.sum((1, 2))
    cy, cx = (out * ys).sum((1, 2)) / mass - 10, (out * xs).sum((1, 2)) / mass - 10
    np.testing.assert_allclose(np.hypot(cy, cx), 4.0, atol=0.3)
    drawn = np.degrees(np.arctan2(t[:, 1], t[:, 0]))  # M = R(-angle): m01 = sin(angle)
    seen = np.degrees(np.arctan2(-cy, cx))  # image rows grow downwards
    assert np.abs(drawn).max() > 30
    np.testing.assert_allclose(np.abs(seen), np.abs(drawn), atol=6)
    source, t = plan_warps(1, 12, 21, 21, rotation=0, scale=0, shift=0.1, seed=0)
    out = warp(tf.constant(img), source, t).numpy()[..., 0]
    mass = out.sum((1, 2))
    cy, cx = (out * ys).sum((1, 2)) / mass - 10, (out * xs).sum((1, 2)) / mass - 14
    assert np.all(np.abs(cy) <= 2.1 + 0.1) and np.all(np.abs(cx) <= 2.1 + 0.1)
    assert np.abs(np.concatenate([cy, cx])).max() > 0.5


def test_warps_are_seeded_on_8_bit_levels_and_checked():
    real = _real(n=6)
    a = plan_warps(6, 100, 9, 11, seed=3)
    b = plan_warps(6, 100, 9, 11, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(plan_warps(6, 100, 9, 11, seed=4)[1], a[1])
    out = warp(ImageRows(real), *a).numpy()
    assert out.min() >= 0 and out.max() <= 1
    np.testing.assert_array_equal(out, np.round(out * 255) / 255)  # what is sent is what trains
    assert not np.array_equal(np.round(out * 255).astype(np.uint8), real[a[0]])
    with pytest.raises(ConfigError, match="warp settings"):
        plan_warps(6, 10, 9, 11, scale=1.5)


def test_warps_are_paid_for_beside_cutmix_in_a_run(idx_dir, tmp_path):
    config = tiny_config(idx_dir)
    config.synthesis.sources = "real,cutmix:0.5,warp:0.5"
    config.synthesis.selection = "random"
    config.student.epochs = 1
    config.warp.flip = 0.5
    seen = []

    def counting_teacher(x):
        seen.append(len(x))
        return toy_teacher(x)

    unlabeled = data.load("fashion_mnist:train[:100]", (28, 28, 1), data_dir=idx_dir).unlabeled()
    teacher = Teacher(CallableBackend(counting_teacher), 10)
    report = run_fsbbt(config, teacher, unlabeled, None, str(tmp_path / "w"))
    assert report["images_per_source"] == {"real": 100, "cutmix": 150, "warp": 150}
    assert report["teacher_queries"] == sum(seen) == 400  # every warp was answered
    gen = synthesis.build("warp", config)
    gen.prepare(None, ImageRows(unlabeled.images), None)
    again = gen.candidates(150, seed=1)
    assert np.array_equal(again.params[1], gen.candidates(150, seed=1).params[1])
