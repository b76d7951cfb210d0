"""The feature hint (``unpaid.hint``): the second student's last hidden layer pulled toward a
first student's; checked before any answer, trained with the student, resumable."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kd_keras.distill.distiller import Distiller
from kd_keras.distill.hint import FeatureHint
from kd_keras.distill.run import fsbbt
from kd_keras.errors import ConfigError
from kd_keras.teachers import CallableBackend, Teacher
from test_distill import toy_teacher
from test_fresh_mixes import _config, _unlabeled


def _dense(hidden, name):
    inputs = keras.Input((6,))
    x = keras.layers.Dense(hidden, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(x), name=name)


def test_the_penalty_is_the_normalised_distance_of_the_mapped_features():
    keras.utils.set_random_seed(0)
    student, labeller = _dense(4, "s"), _dense(5, "l")
    hint = FeatureHint(student, labeller, 0.5)
    images = np.random.default_rng(0).normal(size=(7, 6)).astype("float32")
    features, logits = hint.student_with_features(images)
    np.testing.assert_allclose(logits, student(images), rtol=1e-6)  # the student's own layers
    mapped = keras.ops.convert_to_numpy(hint.projection(features))
    target = keras.ops.convert_to_numpy(hint.labeller_features(images))
    assert mapped.shape == target.shape == (7, 5)

    def unit(v):
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-6)

    expected = 0.5 * np.sum((unit(mapped) - unit(target)) ** 2, axis=1)
    np.testing.assert_allclose(hint.penalty(images, features), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="weight must be > 0"):
        FeatureHint(student, labeller, 0.0)


def _fit(hint, epochs=8):
    keras.utils.set_random_seed(0)
    student, labeller = _dense(4, "s"), _dense(5, "l")
    before = [w.copy() for w in labeller.get_weights()]
    distiller = Distiller(student, loss="kl", temperature=2.0, labellers=[labeller], hint=hint)
    distiller.compile(optimizer=keras.optimizers.Adam(0.02))
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = np.asarray(tf.nn.softmax(rng.normal(size=(64, 3)) * 2), "float32")
    history = distiller.fit(x, y, batch_size=16, epochs=epochs, verbose=0, shuffle=False)
    return distiller, student, labeller, before, history.history


def test_the_hint_pulls_the_student_toward_the_labeller_and_trains_only_student_and_map():
    distiller, student, labeller, before, history = _fit(1.0)
    assert history["hint"][-1] < 0.5 * history["hint"][0]  # the features come to agree
    for a, b in zip(labeller.get_weights(), before):  # the labeller is read, never trained
        np.testing.assert_array_equal(a, b)
    assert distiller.hint.projection.trainable_weights  # the map is trained with the student
    plain_distiller, plain, _, _, plain_history = _fit(0.0)
    assert plain_distiller.hint is None and "hint" not in plain_history
    assert not np.allclose(student.get_weights()[0], plain.get_weights()[0])
    # a hint without labellers has nothing to read: the plain distiller, as before
    assert Distiller(_dense(4, "x"), hint=1.0).hint is None


def test_a_hint_that_cannot_act_fails_before_any_answer(idx_dir, tmp_path):
    teacher = Teacher(CallableBackend(lambda x: pytest.fail("a paid answer")), 10)
    config = _config(idx_dir, fresh=0.0)
    config.unpaid.count, config.unpaid.hint = 0, 1.0
    with pytest.raises(ConfigError, match="unpaid.hint=1 needs the first students"):
        fsbbt(config, teacher, _unlabeled(idx_dir), None, str(tmp_path / "a"))

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.flat, self.out = keras.layers.Flatten(), keras.layers.Dense(10)

        def call(self, x):
            return self.out(self.flat(x))

    config = _config(idx_dir, fresh=0.0)
    config.unpaid.hint, config.unpaid.students, config.unpaid.model = 1.0, 1, "lenet5"
    student = Subclassed()
    student(np.zeros((1, 28, 28, 1), "float32"))
    with pytest.raises(ConfigError, match="reads the student's last hidden layer"):
        fsbbt(config, teacher, _unlabeled(idx_dir), None, str(tmp_path / "b"), student=student)


class _Map(keras.callbacks.Callback):
    """Records the hint's map when training begins (after a resume's restore) and as each
    epoch ends (when it is backed up); crashes as epoch ``crash`` begins."""

    def __init__(self, crash=None):
        super().__init__()
        self.crash, self.begun, self.ended = crash, None, []

    def on_train_begin(self, logs=None):
        self.begun = self.model.hint.projection.get_weights()[0].copy()

    def on_epoch_end(self, epoch, logs=None):
        self.ended.append(self.model.hint.projection.get_weights()[0].copy())

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.crash:
            raise RuntimeError("simulated crash")


def test_a_hinted_run_buys_nothing_more_and_resumes_with_its_map(idx_dir, tmp_path, capsys):
    from kd_keras import data
    from kd_keras.teachers.cache import AnswerCache
    from test_distill import _Epochs

    config = _config(idx_dir, fresh=0.0)
    config.student.model, config.unpaid.model, config.student.epochs = "lenet5_half", "teacher", 2
    config.unpaid.hint = 0.5
    eval_set = data.load("fashion_mnist:test[:200]", (28, 28, 1), data_dir=idx_dir, compact=True)
    cache, workdir = str(tmp_path / "cache.sqlite"), str(tmp_path / "w")
    first, crashed = Teacher(CallableBackend(toy_teacher), 10, cache=AnswerCache(cache)), _Map(1)
    with pytest.raises(RuntimeError, match="simulated crash"):
        fsbbt(config, first, _unlabeled(idx_dir), eval_set, workdir, callbacks=[crashed])
    assert first.paid == 300  # the real and CutMix images only
    hint_line = "feature hint from the first first student's last hidden layer, weight 0.5"
    assert hint_line in capsys.readouterr().out
    assert not np.allclose(crashed.begun, crashed.ended[0])  # the map learnt in epoch 1

    second, resumed, epochs = (Teacher(CallableBackend(toy_teacher), 10, cache=AnswerCache(cache)),
                               _Map(), _Epochs())
    result = fsbbt(config, second, _unlabeled(idx_dir), eval_set, workdir, resume=True,
                   callbacks=[epochs, resumed])
    assert epochs.seen == [1] and second.stats.sent == 0  # continued, nothing paid again
    assert hint_line in capsys.readouterr().out
    np.testing.assert_array_equal(resumed.begun, crashed.ended[0])  # the map restored too
    hints = result.history.history["hint"]
    assert len(hints) == 1 and 0 < hints[0] < 4 * 0.5
    assert result.report["teacher_queries"] == 300
