"""Evaluation after training: a teacher that fails there costs nothing already made
(issue #21, item 4)."""

import json
import os

import keras
import pytest

from kd_keras import data
from kd_keras.distill.run import run_fsbbt
from kd_keras.errors import TeacherError
from kd_keras.teachers import AnswerCache, CallableBackend, Teacher

from test_distill import tiny_config, toy_teacher


class _TeacherGoesAway(keras.callbacks.Callback):
    """Takes the teacher down when the student's training ends."""

    def __init__(self, state):
        super().__init__()
        self.state = state

    def on_train_end(self, logs=None):
        self.state["gone"] = True


def test_a_teacher_failing_during_evaluation_keeps_the_student_and_says_so(idx_dir, tmp_path):
    config = tiny_config(idx_dir)
    config.synthesis.sources = "real,mixup"
    config.student.epochs = 1
    state = {"gone": False}

    def teacher_fn(x):
        if state["gone"]:
            raise TeacherError("teacher at http://example/v1/models/t answered HTTP 404")
        return toy_teacher(x)
    unlabeled = data.load("fashion_mnist:train[:100]", (28, 28, 1), data_dir=idx_dir).unlabeled()
    eval_set = data.load("fashion_mnist:test", (28, 28, 1), data_dir=idx_dir)
    teacher = Teacher(CallableBackend(teacher_fn), 10, cache=AnswerCache(None))
    workdir = tmp_path / "w"
    with pytest.raises(TeacherError, match="the student is saved in"):
        run_fsbbt(config, teacher, unlabeled, eval_set, str(workdir),
                  callbacks=[_TeacherGoesAway(state)])
    assert os.path.exists(workdir / "student" / "saved_model.pb")
    assert os.path.exists(workdir / "student.keras")
    report = json.loads((workdir / "report.json").read_text())
    assert "HTTP 404" in report["eval_error"]
    assert 0 <= report["student_accuracy"] <= 1 and report["teacher_queries"] == 400


def test_epoch_progress_prints_about_the_lines_asked_for_and_the_last_epoch(capsys):
    """A silent ``fit`` (the unpaid images' labellers) still shows how far it is."""
    import numpy as np

    from kd_keras.distill.evaluation import EpochProgress

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.zeros((8, 3), np.float32), np.zeros((8, 2), np.float32)
    model.fit(x, y, epochs=7, verbose=0, callbacks=[EpochProgress("labeller 1/3", 7, lines=3)])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines] == [
        "labeller 1/3: epoch 3/7", "labeller 1/3: epoch 6/7", "labeller 1/3: epoch 7/7"]
    assert all(" loss " in line and line.endswith(" s") for line in lines)
    with pytest.raises(ValueError, match="at least 1"):
        EpochProgress("x", 0)
