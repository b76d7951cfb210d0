"""Fresh mixes (``unpaid.fresh``): new mixes of each of the second student's batches, answered
by the first students on the very image in the train step; no answer bought, resumable."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kd_keras import data
from kd_keras.distill.augment import UNANSWERED, fresh_mixes
from kd_keras.distill.distiller import Distiller
from kd_keras.distill.run import fsbbt
from kd_keras.errors import ConfigError
from kd_keras.teachers import CallableBackend, Teacher
from test_distill import tiny_config, toy_teacher


def _config(idx_dir, fresh=0.5):
    config = tiny_config(idx_dir)
    config.synthesis.sources, config.synthesis.selection = "real,cutmix", "random"
    config.synthesis.num_synthetic, config.student.epochs = 200, 1
    config.unpaid.count, config.unpaid.students, config.unpaid.fresh = 200, 2, fresh
    config.unpaid.model = ""  # the student's own model
    return config


def _unlabeled(idx_dir):
    return data.load("fashion_mnist:train[:100]", (28, 28, 1), data_dir=idx_dir,
                     compact=True).unlabeled()


def test_fresh_mixes_are_spread_through_the_batch_unanswered_and_new_every_epoch():
    x = tf.random.stateless_uniform([8, 6, 6, 1], [1, 2])
    y = tf.one_hot(tf.range(8) % 3, 3)
    ds = fresh_mixes(tf.data.Dataset.from_tensors((x, y)).repeat(2), "cutmix", 0.5, seed=3)
    (x1, y1), (x2, y2) = list(ds)
    assert x1.shape == (12, 6, 6, 1) and y1.shape == (12, 3)
    fresh = np.all(y1.numpy() == UNANSWERED, axis=1)
    assert fresh.sum() == 4 and np.array_equal(fresh, np.all(y2.numpy() == UNANSWERED, axis=1))
    np.testing.assert_array_equal(x1[~fresh], x)  # the batch as it was, in order, answers kept
    np.testing.assert_array_equal(y1[~fresh], y)
    # spread through the batch: each of 2 (or 4) devices' slices gets its share
    assert [fresh[:6].sum(), fresh[6:].sum()] == [2, 2] and fresh.reshape(4, 3).sum(1).tolist() \
        == [1, 1, 1, 1]
    pixels = x.numpy().reshape(8, -1)  # each mix's pixels come from the batch's images
    for mix in x1[fresh].numpy().reshape(4, -1):
        assert np.all(np.any(np.isclose(mix[None], pixels), axis=0))
    assert not np.allclose(x1[fresh], x2[fresh])  # new mixes each time the batch is drawn
    doubled = next(iter(fresh_mixes(tf.data.Dataset.from_tensors((x, y)), "mixup", 1.5)))
    assert doubled[0].shape[0] == 20 and np.sum(np.all(doubled[1] == UNANSWERED, 1)) == 12
    with pytest.raises(ConfigError, match="mixup or cutmix"):
        fresh_mixes(ds, "warp", 0.5)


def test_the_labellers_answer_only_the_unanswered_rows():
    keras.utils.set_random_seed(0)
    labellers = [keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]) for _ in range(2)]
    distiller = Distiller(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]),
                          labellers=labellers)
    images = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    targets = np.full((5, 3), UNANSWERED, "float32")
    targets[:2] = np.eye(3)[:2]
    answered = distiller.answer_fresh(tf.constant(images), tf.constant(targets)).numpy()
    np.testing.assert_array_equal(answered[:2], targets[:2])
    mean = sum(keras.ops.convert_to_numpy(keras.ops.softmax(m(images))) for m in labellers) / 2
    np.testing.assert_allclose(answered[2:], mean[2:], rtol=1e-5)
    paid = np.eye(3, dtype="float32")[[0, 1, 2, 0, 1]]  # a batch without fresh mixes
    np.testing.assert_array_equal(distiller.answer_fresh(tf.constant(images), tf.constant(paid)),
                                  paid)
    unlabelled = Distiller(labellers[0]).answer_fresh(tf.constant(images), tf.constant(targets))
    np.testing.assert_array_equal(unlabelled, targets)  # no labellers: the targets as given


def test_a_batch_slice_without_fresh_mixes_is_left_as_it_is_in_a_graph():
    """A device's or worker's slice of a batch may hold no fresh mix; a convolutional
    labeller is not called on the empty rest (TF's convolutions fail on an empty batch in a
    graph: "input depth must be evenly divisible by filter depth", as once on two workers)."""
    def conv():
        return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(3, 3),
                                 keras.layers.Conv2D(2, 3), keras.layers.Flatten(),
                                 keras.layers.Dense(3)])

    distiller = Distiller(conv(), labellers=[conv()])
    paid = tf.constant(np.eye(3, dtype="float32")[[0, 1, 2, 0]])
    answer = tf.function(distiller.answer_fresh)
    np.testing.assert_array_equal(answer(tf.zeros([4, 8, 8, 1]), paid), paid)
    some = tf.tensor_scatter_nd_update(paid, [[1]], [[UNANSWERED] * 3])
    answered = answer(tf.zeros([4, 8, 8, 1]), some).numpy()
    assert np.all(answered >= 0) and np.allclose(answered.sum(1), 1)


def test_fresh_mixes_buy_nothing_and_a_resumed_run_reuses_the_kept_first_students(
        idx_dir, tmp_path, capsys):
    from kd_keras.teachers.cache import AnswerCache
    from test_distill import _Epochs
    from test_unpaid import crash_in_the_second_student

    config = _config(idx_dir)
    eval_set, cache, workdir, first = crash_in_the_second_student(config, idx_dir, tmp_path)
    assert first.paid == 300  # the real and CutMix images only
    out = capsys.readouterr().out
    assert "0.5 x each batch of new cutmix mixes added, answered by 2 first students" in out
    kept = sorted(p.name for p in (workdir / "unpaid_labellers").iterdir())
    assert kept == ["0.npz", "0.weights.h5", "1.npz", "1.weights.h5"]

    second = Teacher(CallableBackend(toy_teacher), 10, cache=AnswerCache(cache))
    epochs = _Epochs()
    result = fsbbt(config, second, _unlabeled(idx_dir), eval_set, str(workdir), resume=True,
                   callbacks=[epochs])
    assert epochs.seen == [1] and second.stats.sent == 0  # continued, nothing paid again
    out = capsys.readouterr().out
    assert "first student 1/2: epoch" not in out and "first student 2/2: epoch" not in out
    assert "unpaid: first student 2's answers read from" in out
    assert "0.5 x each batch of new cutmix mixes added, answered by 2 first students" in out
    assert result.report["teacher_queries"] == 300
    from kd_keras import models  # the kept weights are the first students that answered
    from kd_keras.distill.evaluation import predict_logits
    for k in range(2):
        labeller = models.build("lenet5", (28, 28, 1), 10)
        labeller.load_weights(workdir / "unpaid_labellers" / f"{k}.weights.h5")
        answers = keras.ops.convert_to_numpy(keras.ops.softmax(predict_logits(labeller, eval_set.images)))
        kept = np.load(workdir / "unpaid_labellers" / f"{k}.npz")["eval"]
        np.testing.assert_allclose(answers, kept, atol=1e-4)


def test_fresh_mixes_that_cannot_be_made_fail_before_any_answer(idx_dir, tmp_path):
    teacher = Teacher(CallableBackend(lambda x: pytest.fail("a paid answer")), 10)
    config = _config(idx_dir)
    config.unpaid.count = 0
    with pytest.raises(ConfigError, match="unpaid.fresh=0.5 needs the first students"):
        fsbbt(config, teacher, _unlabeled(idx_dir), None, str(tmp_path / "a"))
    config = _config(idx_dir)
    config.unpaid.generator = "warp"
    with pytest.raises(ConfigError, match="unpaid.generator must be one of cutmix, mixup"):
        fsbbt(config, teacher, _unlabeled(idx_dir), None, str(tmp_path / "b"))
    config = _config(idx_dir)
    config.unpaid.count, config.student.targets = -1, "true_labels"
    config.synthesis.sources = "real"
    with pytest.raises(ConfigError, match="student.targets is not teacher"):
        fsbbt(config, teacher, _unlabeled(idx_dir), None, str(tmp_path / "c"))


def test_a_users_student_trained_on_is_never_its_own_labeller(idx_dir, tmp_path, monkeypatch):
    """With the API's ``student=`` the first student goes on training as the second; the
    fresh mixes are answered by a frozen copy of it, which ends as it began."""
    from kd_keras import models
    from kd_keras.distill import student as student_module

    made = []

    class Recording(student_module.Distiller):
        def __init__(self, student, **kwargs):
            super().__init__(student, **kwargs)
            made.append((student, self.labellers))

    monkeypatch.setattr(student_module, "Distiller", Recording)
    config = _config(idx_dir)
    config.unpaid.students = 1
    own = models.build("lenet5_half", (28, 28, 1), 10)
    result = fsbbt(config, Teacher(CallableBackend(toy_teacher), 10), _unlabeled(idx_dir), None,
                   str(tmp_path / "w"), student=own)
    (first, none), (second, labellers) = made
    assert first is second is own is result.student and none == []
    assert len(labellers) == 1 and labellers[0] is not own
    kept = models.build("lenet5_half", (28, 28, 1), 10)
    kept.load_weights(tmp_path / "w" / "unpaid_labellers" / "0.weights.h5")
    for a, b in zip(labellers[0].get_weights(), kept.get_weights()):
        np.testing.assert_array_equal(a, b)  # the copy answered as the first student was
    assert any(not np.array_equal(a, b) for a, b in zip(own.get_weights(), kept.get_weights()))

