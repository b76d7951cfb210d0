"""The augmentation checks of ``student.augment=auto`` (kd_keras.distill.augment_check):
the teacher decides, its answers to the mirrored and shifted copies are paid within the
budget and kept as training data, and a resumed run decides the same for nothing."""

import numpy as np
import pytest

from kd_keras import data
from kd_keras.data import ImageSet
from kd_keras.distill.augment_check import (BLANK_FRAME, FRAME, augmentation_for, frame_content,
                                            kept, mirror, translate)
from kd_keras.distill.labelled import build_training_set
from kd_keras.distill.preflight import preflight
from kd_keras.teachers import AnswerCache, CallableBackend, Teacher
from test_distill import W, tiny_config


def softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _symmetric(x):
    """Answers that do not change when the image is mirrored."""
    x = np.asarray(x, np.float32)
    return softmax(((x + x[:, :, ::-1]).reshape(len(x), -1) - 0.4) @ W)


def _handed(x):
    """Answers from the image's left-right difference (mirroring flips its sign), and from
    single pixels (any shift changes them)."""
    x = np.asarray(x, np.float32)
    return softmax(((x - x[:, :, ::-1]).reshape(len(x), -1)) @ W * 20)


def _mean_brightness(x):
    """Answers from the image's mean: mirroring keeps it, shifting all but keeps it."""
    x = np.asarray(x, np.float32).reshape(len(x), -1).mean(1)
    return softmax(np.stack([np.cos(x * 8 + k) for k in range(10)], 1) * 5)


def _build(idx_dir, tmp_path, teacher_fn, resume=False, check=40, unlabeled=None):
    sent = []

    def answer(x):
        sent.append(np.array(x))
        return teacher_fn(x)

    config = tiny_config(idx_dir)
    config.synthesis.sources, config.synthesis.selection = "real,cutmix", "random"
    config.student.augment_check, config.query.budget = check, 300
    if unlabeled is None:
        unlabeled = data.load("fashion_mnist:train[:100]", (28, 28, 1), data_dir=idx_dir,
                              compact=True).unlabeled()
    teacher = Teacher(CallableBackend(answer), 10, cache=AnswerCache(str(tmp_path / "answers.sqlite")))
    ctx = preflight(config, teacher, unlabeled, None, str(tmp_path / "w"), resume=resume)
    labelled, real = build_training_set(ctx)
    return ctx, labelled, real, sent


@pytest.mark.parametrize("teacher_fn,used", [(_mean_brightness, "flip_shift"),
                                             (_symmetric, "flip"), (_handed, "none")])
def test_the_teacher_decides_and_every_checked_answer_is_kept(idx_dir, tmp_path,
                                                              teacher_fn, used):
    ctx, labelled, real, sent = _build(idx_dir, tmp_path, teacher_fn)
    # the budget holds: 100 real + 40 mirrored + 40 shifted + 120 CutMix
    assert ctx.teacher.paid == 300 and sum(len(x) for x in sent) == 300
    assert labelled.sizes() == {"real": 100, "mirrored": 40, "shifted": 40, "cutmix": 120}
    assert augmentation_for(ctx.config, labelled) == used
    # each part holds transformed real images, with the answers the teacher gave them
    originals = real.raw(np.arange(100))
    for name, transform in (("mirrored", mirror), ("shifted", translate)):
        part = labelled.parts[name]
        images = part.candidates.make_numpy(np.arange(40))
        for image in images:
            made = [transform(o[None], np.random.default_rng(0), 0.1)[0] for o in originals]
            assert name == "shifted" or any(np.array_equal(image, m) for m in made)
        np.testing.assert_allclose(part.targets, teacher_fn(images.astype(np.float32) / 255.0),
                                   rtol=1e-5, atol=1e-6)
    assert not np.array_equal(labelled.parts["shifted"].candidates.make_numpy(np.arange(40)),
                              real.raw(np.arange(40)))


def test_shifts_move_whole_pixels_within_reach_and_repeat_the_edge():
    images = np.arange(2 * 10 * 10, dtype=np.uint8).reshape(2, 10, 10, 1)
    moved = translate(images, np.random.default_rng(3), 0.2)  # up to 2 pixels
    assert moved.dtype == np.uint8 and moved.shape == images.shape
    for before, after in zip(images, moved):
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if np.array_equal(np.roll(before, (dy, dx), (0, 1))[2:-2, 2:-2],
                                   after[2:-2, 2:-2])]
        assert len(found) == 1 and found[0] != (0, 0)
    assert np.array_equal(mirror(images, None, 0.1), images[:, :, ::-1])


def test_a_resumed_run_decides_the_same_for_nothing(idx_dir, tmp_path):
    _, first, _, _ = _build(idx_dir, tmp_path, _symmetric)
    ctx, again, _, sent = _build(idx_dir, tmp_path, _symmetric, resume=True)
    assert sent == [] and ctx.teacher.paid == 300
    assert again.agreement == first.agreement and set(first.agreement) == {"flip", "shift", FRAME}


def test_no_check_without_room_in_the_budget_or_when_set_by_hand(idx_dir, tmp_path):
    ctx, labelled, _, _ = _build(idx_dir, tmp_path / "a", _symmetric, check=0)
    assert labelled.agreement == {} and "mirrored" not in labelled.parts
    assert augmentation_for(ctx.config, labelled) == "none"
    assert labelled.sizes() == {"real": 100, "cutmix": 200}


def test_a_worker_reading_the_published_set_gets_the_verdict(idx_dir, tmp_path):
    from kd_keras.distill.store import LabelledSet

    ctx, labelled, real, _ = _build(idx_dir, tmp_path, _symmetric)
    labelled.publish(str(tmp_path / "shared"), real, ctx.real_probs)
    copy, _, _ = LabelledSet.read(str(tmp_path / "shared"), ctx.config, str(tmp_path / "copy"))
    assert copy.agreement == labelled.agreement and labelled.agreement["flip"] == 1.0
    assert copy.sizes() == labelled.sizes()
    for name in ("mirrored", "shifted"):
        np.testing.assert_array_equal(copy.parts[name].candidates.make_numpy(np.arange(40)),
                                      labelled.parts[name].candidates.make_numpy(np.arange(40)))


def _centred(n=100, seed=0):
    """Digits-like images: a bright blob well inside a blank (0) background."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 28, 28, 1), np.uint8)
    for i, (r, c) in enumerate(rng.integers(6, 16, size=(n, 2))):
        x[i, r:r + 6, c:c + 6] = rng.integers(120, 255)
    return x


def test_frame_content_tells_background_frames_from_images_that_fill_the_frame():
    blank = _centred()
    assert frame_content(blank, 0.1) == 0.0
    assert frame_content(blank.astype(np.float32) / 255, 0.1) == 0.0  # uint8 or float
    filled = np.random.default_rng(0).integers(0, 255, (10, 28, 28, 3), dtype=np.uint8)
    assert frame_content(filled, 0.1) > 0.5
    edge = blank.copy()
    edge[:, 0:2, 5:20] = 200  # a stroke in the frame a shift of 3 pixels moves out
    assert frame_content(edge, 0.1) > BLANK_FRAME


def test_shifts_are_used_where_they_move_only_background_whatever_the_teacher_says():
    assert kept({"flip": 0.5, "shift": 0.6, FRAME: 0.01}) == ["shift"]
    assert kept({"flip": 0.5, "shift": 0.6, FRAME: 0.2}) == []
    assert kept({"flip": 0.9, "shift": 0.9}) == ["flip", "shift"]  # the teacher's verdicts


def test_a_teacher_that_is_not_shift_invariant_still_gets_shifts_on_blank_frames(idx_dir, tmp_path):
    unlabeled = ImageSet(_centred(), None, 10, "centred")
    ctx, labelled, _, sent = _build(idx_dir, tmp_path, _handed, unlabeled=unlabeled)
    assert labelled.agreement["shift"] < 0.8 and labelled.agreement[FRAME] == 0.0
    assert augmentation_for(ctx.config, labelled) == "shift"
    # the frame is read from the images: nothing more bought (equal images share answers)
    assert ctx.teacher.paid == sum(len(x) for x in sent) <= 300
