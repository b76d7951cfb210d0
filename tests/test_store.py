"""The labelled-set store (issue #24): recipes remake the pixels the teacher saw, bit for
bit, for every generator; nothing holds the whole synthetic set; a worker's copy read back
through tf.io.gfile trains on the same batches."""

import tracemalloc

import numpy as np
import pytest

from kd_keras import data
from kd_keras.distill.labelled import build_training_set
from kd_keras.distill.preflight import preflight
from kd_keras.distill.store import LabelledSet
from kd_keras.synthesis.base import IndexedCandidates
from kd_keras.teachers import CallableBackend, Teacher
from test_distill import tiny_config, toy_teacher


def _run(idx_dir, tmp_path, sources, selection="random", m=300, record=True):
    sent = {}  # every image sent, as bytes, and the answer it got

    def teacher_fn(x):
        answers = toy_teacher(x)
        if record:
            sent.update((row.tobytes(), a) for row, a in zip(np.array(x), answers))
        return answers

    config = tiny_config(idx_dir)
    config.synthesis.sources, config.synthesis.selection = sources, selection
    config.synthesis.num_synthetic, config.selection.probe_epochs = m, 1
    unlabeled = data.load("fashion_mnist:train[:100]", (28, 28, 1), data_dir=idx_dir,
                          compact=True).unlabeled()
    ctx = preflight(config, Teacher(CallableBackend(teacher_fn), 10), unlabeled, None,
                    str(tmp_path / "w"))
    labelled, real = build_training_set(ctx)
    return labelled, real, sent, ctx


@pytest.mark.parametrize("sources,selection", [("real,mixup,cvae", "random"),
                                               ("real,cutmix", "random"),
                                               ("real,mixup,cvae", "uncertainty")])
def test_the_student_trains_on_exactly_the_pixels_the_teacher_answered(
        idx_dir, tmp_path, sources, selection):
    labelled, real, answers, _ = _run(idx_dir, tmp_path, sources, selection)
    seen = 0
    for x, y in labelled.dataset(64, seed=1).as_numpy_iterator():
        for image, target in zip(x, y):
            assert image.tobytes() in answers  # bit for bit an image the teacher answered
            np.testing.assert_allclose(target, answers[image.tobytes()], rtol=1e-5, atol=1e-7)
            seen += 1
    assert seen == len(labelled) == 400
    assert real.images.dtype == np.uint8  # the real images held compactly
    for name, part in labelled.parts.items():
        if name in ("mixup", "cutmix"):  # kept as their recipe: pairs, weights, boxes
            assert isinstance(part.candidates, IndexedCandidates)
        if name == "cvae":  # a network's samples: stored once, as uint8 rows on disk
            assert part.candidates.rows.images.dtype == np.uint8
            assert isinstance(part.candidates.rows.images, np.memmap)


def test_no_array_of_the_whole_synthetic_set_is_made(idx_dir, tmp_path):
    m = 20000  # 20,000 CutMix images: 62.7 MB as float32, 15.7 MB as uint8
    tracemalloc.start()
    labelled, _, _, _ = _run(idx_dir, tmp_path, "real,cutmix", m=m, record=False)
    for _ in labelled.dataset(128, seed=0):
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(labelled) == 100 + m
    recipe = sum(p.nbytes for p in labelled.parts["cutmix"].candidates.params)
    assert recipe < m * 28 * 28 / 10  # six integers an image, not its pixels
    assert peak < m * 28 * 28, peak  # less than the set as uint8 (a few batches in flight)


def test_a_small_set_is_held_once_and_gives_the_same_batches(idx_dir, tmp_path):
    labelled, _, _, _ = _run(idx_dir, tmp_path, "real,mixup,cvae,cutmix", m=600, record=False)
    size = len(labelled) * 28 * 28  # uint8 pixels of every image
    assert labelled.held(size - 1) is None  # over the limit: made per batch, nothing held
    held = labelled.held(size)
    assert held.dtype == np.uint8 and held.shape == (len(labelled), 28, 28, 1)
    streamed = labelled.dataset(64, seed=4).as_numpy_iterator()
    for (x1, y1), (x2, y2) in zip(streamed, labelled.dataset(64, seed=4, hold_bytes=size)):
        np.testing.assert_array_equal(x1, x2.numpy())
        np.testing.assert_array_equal(y1, y2.numpy())


def test_a_published_set_read_back_trains_on_the_same_batches(idx_dir, tmp_path):
    labelled, real, _, ctx = _run(idx_dir, tmp_path, "real,mixup,cvae")
    shared = str(tmp_path / "shared")
    labelled.publish(shared, real, ctx.real_probs)
    again, real_again, probs_again = LabelledSet.read(shared, ctx.config, str(tmp_path / "copy"))
    assert again.sizes() == labelled.sizes()
    # what a worker makes its unpaid images from: the chief's real images and their answers
    np.testing.assert_array_equal(real_again.images, real.images)
    np.testing.assert_array_equal(probs_again, ctx.real_probs)
    for (x1, y1), (x2, y2) in zip(labelled.dataset(50, seed=2).as_numpy_iterator(),
                                  again.dataset(50, seed=2).as_numpy_iterator()):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)


def test_stored_rows_are_written_through_gfile_and_appear_only_whole(tmp_path):
    from kd_keras.data.rows import NpyWriter, write_npy

    images = np.arange(5 * 4 * 4 * 3, dtype=np.uint8).reshape(5, 4, 4, 3)
    path = str(tmp_path / "part.npy")
    writer = NpyWriter(path, np.uint8, images.shape)
    writer.write(images[:2])
    assert not (tmp_path / "part.npy").exists()  # a reader never sees half a file
    with pytest.raises(ValueError, match="do not fit"):
        writer.write(images[:1, :2])
    writer.write(images[2:])
    np.testing.assert_array_equal(np.load(writer.close(), mmap_mode="r"), images)
    short = NpyWriter(str(tmp_path / "short.npy"), np.uint8, images.shape)
    short.write(images[:3])
    with pytest.raises(ValueError, match="3 of 5 rows"):
        short.close()
    assert not (tmp_path / "short.npy").exists()
    write_npy(str(tmp_path / "blocks.npy"), images, block_bytes=50)  # 1 row a block
    np.testing.assert_array_equal(np.load(tmp_path / "blocks.npy"), images)
