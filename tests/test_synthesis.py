"""The synthesizer plug-in interface: registry, counts, CutMix, selection over any generator."""

import numpy as np
import pytest
import tensorflow as tf

from kd_keras import data, synthesis
from kd_keras.data.rows import ImageRows
from kd_keras.distill.run import run_fsbbt
from kd_keras.errors import ConfigError
from kd_keras.synthesis.cutmix import cut_and_paste, cut_and_paste_numpy, plan_cutmix
from kd_keras.teachers import CallableBackend, Teacher
from test_distill import tiny_config, toy_teacher


def test_registry_lists_the_generators_and_refuses_unknown_names():
    assert {"mixup", "cvae", "cutmix"} <= set(synthesis.names())
    with pytest.raises(ConfigError, match="unknown synthesizer 'gan'"):
        synthesis.build("gan", None)


def test_cutmix_pastes_one_box_of_the_second_image():
    real = np.stack([np.zeros((10, 12, 1)), np.ones((10, 12, 1))]).astype(np.float32)
    first, second, top, left, bh, bw = plan_cutmix(2, 200, 10, 12, seed=3)
    assert len(first) == 200 and np.all(first != second)
    area = bh * bw / 120.0
    assert np.all((area > 0.05) & (area < 0.95))
    out = cut_and_paste(tf.constant(real), first, second, top, left, bh, bw).numpy()
    for k in range(5):
        from_second = out[k, ..., 0] == real[second[k], 0, 0, 0]
        rows, cols = np.nonzero(from_second)
        assert from_second.sum() == bh[k] * bw[k]  # exactly the box, a rectangle
        assert (rows.min(), cols.min()) == (top[k], left[k])
    again = plan_cutmix(2, 200, 10, 12, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(again, (first, second, top, left, bh, bw)))


def test_cutmix_redraws_boxes_that_change_no_pixel(idx_dir):
    """Digits on a blank background: a box of background pasted on background is a copy of
    a real image (answered from the cache, a slot of the budget unspent); it is redrawn."""
    real = np.zeros((30, 16, 16, 1), np.uint8)
    real[:, 6:10, 6:10] = np.arange(1, 31, dtype=np.uint8)[:, None, None, None]  # a centre blob
    gen = synthesis.build("cutmix", tiny_config(idx_dir))
    gen.prepare(None, ImageRows(real), None)
    plain = plan_cutmix(30, 2000, 16, 16, seed=5)
    made = cut_and_paste_numpy(ImageRows(real), *plain)
    copies = np.all((made == real[plain[0]]).reshape(2000, -1), axis=1)
    assert copies.sum() > 100  # without the redraw, many boxes miss the blob
    cands = gen.candidates(2000, seed=5)
    made = cands.make_numpy(np.arange(2000))
    assert not np.any(np.all((made == real[cands.params[0]]).reshape(2000, -1), axis=1))
    again = gen.candidates(2000, seed=5)  # the same seed, the same candidates (resume, cache)
    assert all(np.array_equal(a, b) for a, b in zip(again.params, cands.params))
    assert not np.array_equal(gen.candidates(2000, seed=6).params[0], cands.params[0])


def test_candidates_subset_and_stream_in_order(idx_dir):
    config = tiny_config(idx_dir)
    real = data.load("fashion_mnist:train[:20]", (28, 28, 1), data_dir=idx_dir).images
    gen = synthesis.build("cutmix", config)
    gen.prepare(None, ImageRows(real), None)
    cands = gen.candidates(50, seed=1)
    full = np.concatenate(list(cands.dataset(16).as_numpy_iterator()))
    part = np.concatenate(list(cands.subset(np.array([3, 7, 41])).dataset(2).as_numpy_iterator()))
    np.testing.assert_array_equal(part, full[[3, 7, 41]])


@synthesis.register("flip_test")
class FlipSynthesizer(synthesis.Synthesizer):
    """A generator defined in a test: mirrored real images. Registering is all it takes."""

    def prepare(self, ctx, real, real_probs):
        self.real = real

    def candidates(self, count, seed):
        idx = np.random.default_rng(seed).integers(0, len(self.real), count)
        dim = np.linspace(0.5, 1.0, count, dtype=np.float32)[:, None, None, None]
        return synthesis.ArrayCandidates(self.real.rows(idx)[:, :, ::-1] * dim)  # all distinct


@pytest.mark.parametrize("selection", ["random", "uncertainty"])
def test_a_new_generator_plugs_in_and_selection_chooses_among_it(idx_dir, tmp_path, selection):
    config = tiny_config(idx_dir)
    config.synthesis.sources = "real,cutmix:0.5,flip_test"
    config.synthesis.selection = selection
    config.selection.generators = "all"
    config.selection.probe_epochs = 1
    config.student.epochs = 1
    unlabeled = data.load("fashion_mnist:train[:100]", (28, 28, 1), data_dir=idx_dir).unlabeled()
    teacher = Teacher(CallableBackend(toy_teacher), 10)
    report = run_fsbbt(config, teacher, unlabeled, None, str(tmp_path / "w"))
    assert report["images_per_source"] == {"real": 100, "cutmix": 150, "flip_test": 150}
    assert report["teacher_queries"] == 400  # selection pays for the same count
    if selection == "uncertainty":
        chosen = np.load(tmp_path / "w" / "selection.npz")
        assert set(chosen.files) == {"cutmix:1", "flip_test:1"}  # one round after the warm-up
        assert len(chosen["cutmix:1"]) == 75 and chosen["cutmix:1"].min() >= 75  # from the pool


def test_stage_timing_adds_up_repeated_stages(tmp_path):
    from kd_keras.context import RunContext
    from kd_keras.workdir import Workdir

    ctx = RunContext(None, Workdir(str(tmp_path)), tf.distribute.get_strategy())
    for _ in range(2):
        with ctx.stage("a"):
            pass
    with pytest.raises(KeyError):
        with ctx.stage("b"):
            raise KeyError("timed even when it fails")
    assert set(ctx.timings) == {"a", "b"} and ctx.timings["a"] >= 0


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(32, 32, 3), (96, 96, 3)])
def test_generators_and_a_teacher_of_another_size_work_at_any_image_size(tmp_path, shape):
    """Colour images of two sizes through MixUp, CutMix and the CVAE, taught by a teacher
    that takes 64x64 grayscale images (resized and converted before sending)."""
    from kd_keras.config import base_config

    c = base_config(name="any_size", train="", test="", unlabeled="", image_shape=shape,
                    num_classes=10, teacher_model="lenet5", student_model="lenet5_half",
                    teacher_epochs=1, num_synthetic=60, cvae_epochs=1, cvae_likelihood="normal")
    c.synthesis.sources = "real,mixup:0.4,cutmix:0.3,cvae:0.3"
    c.synthesis.selection = "random"
    c.student.epochs, c.student.batch_size, c.query.image_shape = 1, 20, (64, 64, 1)
    c.unpaid.count = 0  # paid images only: tests/test_unpaid.py
    seen = []

    def gray64_teacher(x):
        seen.append(x.shape[1:])
        z = x.reshape(len(x), -1).mean(1, keepdims=True) * np.arange(10)
        return np.exp(z) / np.exp(z).sum(1, keepdims=True)

    rng = np.random.default_rng(0)
    images = data.ImageSet(rng.random((30, *shape), dtype=np.float32), name="random")
    teacher = Teacher(CallableBackend(gray64_teacher), 10, image_shape=shape,
                      input_shape=c.query.image_shape)
    report = run_fsbbt(c, teacher, images, None, str(tmp_path / "w"))
    assert report["images_per_source"] == {"real": 30, "mirrored": 30, "shifted": 30,
                                           "mixup": 24, "cutmix": 18, "cvae": 18}
    assert set(seen) == {(64, 64, 1)}  # every image reached the teacher at its own size
