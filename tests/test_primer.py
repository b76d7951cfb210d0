"""A primer's soft targets (kd_keras/distill/primer.py): the mix is what it says, no answer
is bought for it, a second student learns from it, and settings that cannot work fail
before the first answer."""

import keras
import numpy as np
import pytest

from kd_keras import data
from kd_keras.distill.primer import primed
from kd_keras.distill.run import fsbbt
from kd_keras.distill.store import LabelledSet
from kd_keras.errors import ConfigError
from kd_keras.teachers import CallableBackend, Teacher
from test_distill import tiny_config, toy_teacher


class _Ctx:
    """The two settings :func:`primed` reads."""

    def __init__(self, weight, temperature=2.0):
        from ml_collections import ConfigDict
        self.config = ConfigDict({"primer": {"weight": weight},
                                  "student": {"temperature": temperature}})


def test_targets_are_the_answers_mixed_with_the_first_students_softened_predictions():
    images = np.random.default_rng(0).random((6, 4, 4, 1)).astype(np.float32)
    answers = np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1, 2]]  # a label-only teacher's
    first = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3)])
    logits = np.asarray(first(images))
    z = logits / 2.0
    soft = np.exp(z - z.max(1, keepdims=True))
    soft /= soft.sum(1, keepdims=True)
    labelled = LabelledSet.of_arrays(images, answers, "cutmix")
    out = primed(_Ctx(0.3), first, labelled)
    np.testing.assert_allclose(out.parts["cutmix"].targets, 0.7 * answers + 0.3 * soft,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.parts["cutmix"].targets.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(labelled.parts["cutmix"].targets, answers)  # not changed
    assert primed(_Ctx(0.0), first, labelled) is None  # off


def test_a_label_only_run_with_a_primer_buys_nothing_more(idx_dir, tmp_path):
    config = tiny_config(idx_dir)
    config.synthesis.sources, config.synthesis.selection = "real,cutmix", "random"
    config.synthesis.num_synthetic, config.student.epochs = 200, 1
    config.query.output, config.primer.weight = "label", 0.5
    unlabeled = data.load("fashion_mnist:train[:100]", (28, 28, 1), data_dir=idx_dir,
                          compact=True).unlabeled()
    sent = []

    def labels(x):
        sent.append(len(x))
        return toy_teacher(x).argmax(1)

    teacher = Teacher(CallableBackend(labels), 10, output="label")
    result = fsbbt(config, teacher, unlabeled, None, str(tmp_path / "w"))
    assert result.report["teacher_queries"] == sum(sent) == 300
    assert result.report["n_train"] == 300
    assert "student_unpaid_train" in result.report["stage_seconds"]  # the second student
    assert (tmp_path / "w" / "tb" / "student_unpaid").is_dir()


def test_a_primer_without_teacher_targets_fails_before_any_answer(idx_dir, tmp_path):
    config = tiny_config(idx_dir)
    config.student.targets, config.primer.weight = "true_labels", 0.5
    config.synthesis.sources = "real"
    sent = []
    teacher = Teacher(CallableBackend(lambda x: sent.append(len(x)) or toy_teacher(x)), 10)
    unlabeled = data.load("fashion_mnist:train[:100]", (28, 28, 1), data_dir=idx_dir)
    with pytest.raises(ConfigError, match="primer.weight"):
        fsbbt(config, teacher, unlabeled, None, str(tmp_path / "w"))
    assert sent == []
