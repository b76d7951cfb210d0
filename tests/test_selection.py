"""Choosing what to pay for in rounds: the choosers (uncertainty, k-center, class balance),
the budget across rounds, and a run killed in a round that resumes without paying twice."""

import os

import numpy as np
import pytest

from kd_keras import data
from kd_keras.distill.run import run_fsbbt
from kd_keras.errors import ConfigError
from kd_keras.synthesis.choosers import (CHOOSERS, ProbeView, class_quotas, kcenter,
                                         uncertainty)
from kd_keras.synthesis.selection import round_sizes, selections
from kd_keras.teachers import AnswerCache, CallableBackend, Teacher
from test_distill import tiny_config, toy_teacher


def _view(probs, features=None):
    probs = np.asarray(probs, np.float32)
    return ProbeView(probs, probs if features is None else np.asarray(features, np.float32))


def test_class_quotas_are_equal_where_the_classes_allow():
    predicted = np.array([0] * 10 + [1] * 10 + [2] * 1)
    assert class_quotas(predicted, 9, 3).tolist() == [4, 4, 1]  # class 2 has one candidate
    assert class_quotas(predicted, 6, 3).tolist() == [3, 2, 1]  # the one left goes to class 0
    assert class_quotas(np.repeat([0, 1, 2], 10), 7, 3).tolist() == [3, 2, 2]
    assert class_quotas(predicted, 100, 3).tolist() == [10, 10, 1]  # no more than there are


def test_uncertainty_picks_the_least_sure_and_balances_classes():
    sure, unsure = [0.98, 0.01, 0.01], [0.4, 0.35, 0.25]
    probs = [sure] * 4 + [unsure] * 4 + [[0.01, 0.98, 0.01], [0.3, 0.45, 0.25]]
    assert uncertainty(_view(probs), 4, None, False).tolist() == [4, 5, 6, 7]
    # balanced: two of the class-0 candidates and both of class 1, the least sure first
    assert uncertainty(_view(probs), 4, None, True).tolist() == [4, 5, 8, 9]


def test_kcenter_covers_what_is_not_paid_for_yet():
    features = np.array([[0, 0], [0.1, 0], [5, 5], [-5, 5], [1, 1]], np.float32)
    probs = np.eye(2, dtype=np.float32)[[0, 0, 1, 1, 0]]
    known = _view(np.eye(2, dtype=np.float32)[[0]], [[0, 0]])  # a paid image at the origin
    # the two far points, not the ones near the paid image (nor each other's neighbours)
    assert kcenter(_view(probs, features), 2, known, False).tolist() == [2, 3]
    # balanced over the two predicted classes: one far point of class 1, then class 0's
    assert kcenter(_view(probs, features), 2, known, True).tolist() == [2, 4]
    # with nothing paid for yet, it still spreads out
    assert len(set(kcenter(_view(probs, features), 3, _view(np.zeros((0, 2)), np.zeros((0, 2))),
                           False).tolist()) & {2, 3}) == 2


def test_every_registered_chooser_is_a_selection_setting_value():
    assert set(CHOOSERS.names()) <= set(selections()) and "random" in selections()
    assert round_sizes(150, 75, 3) == [75, 25, 25, 25]
    assert sum(round_sizes(151, 75, 4)) == 151


def _config(idx_dir, selection="kcenter", rounds=3):
    config = tiny_config(idx_dir)
    config.synthesis.sources = "real,cutmix"
    config.synthesis.selection = selection
    config.selection.generators = "cutmix"
    config.selection.rounds, config.selection.balance = rounds, True
    config.selection.probe_epochs = 1
    config.student.epochs = 1
    return config


class _Sent:
    """A toy teacher that records every image it answers, and can fail after ``fail_after``
    answers (a process killed mid-round)."""

    def __init__(self, fail_after=None):
        self.images, self.fail_after = [], fail_after

    def __call__(self, x):
        if self.fail_after is not None and len(self.images) + len(x) > self.fail_after:
            raise RuntimeError("killed")
        self.images.extend(row.tobytes() for row in np.asarray(x))
        return toy_teacher(x)


@pytest.mark.slow
@pytest.mark.parametrize("selection", ["kcenter", "uncertainty"])
def test_rounds_spend_the_budget_once_and_choose_from_the_pool(idx_dir, tmp_path, selection):
    config = _config(idx_dir, selection)
    unlabeled = data.load("fashion_mnist:train[:100]", (28, 28, 1), data_dir=idx_dir).unlabeled()
    sent = _Sent()
    report = run_fsbbt(config, Teacher(CallableBackend(sent), 10), unlabeled, None,
                       str(tmp_path / "w"))
    assert report["teacher_queries"] == 400 == len(sent.images) == len(set(sent.images))
    assert report["images_per_source"] == {"real": 100, "cutmix": 300}
    chosen = np.load(tmp_path / "w" / "selection.npz")
    assert sorted(chosen.files) == ["cutmix:1", "cutmix:2", "cutmix:3"]
    rounds = [chosen[f"cutmix:{k}"] for k in (1, 2, 3)]
    assert [len(r) for r in rounds] == [50, 50, 50]  # after a warm-up of 150 (0.5)
    every = np.concatenate([np.arange(150), *rounds])
    assert len(set(every.tolist())) == 300 and every.max() < 900  # disjoint, from the pool


@pytest.mark.slow
def test_a_run_killed_in_a_round_resumes_without_paying_twice(idx_dir, tmp_path):
    config = _config(idx_dir)
    unlabeled = data.load("fashion_mnist:train[:100]", (28, 28, 1), data_dir=idx_dir).unlabeled()
    cache, workdir = str(tmp_path / "cache.sqlite"), str(tmp_path / "w")
    first = _Sent(fail_after=100 + 150 + 50 + 20)  # killed while paying for round 2
    with pytest.raises(Exception, match="killed"):
        run_fsbbt(config, Teacher(CallableBackend(first), 10, cache=AnswerCache(cache)),
                  unlabeled, None, workdir)
    assert sorted(np.load(os.path.join(workdir, "selection.npz")).files) == \
        ["cutmix:1", "cutmix:2"]  # round 2 was chosen (and saved) before it was paid for
    second = _Sent()
    report = run_fsbbt(config, Teacher(CallableBackend(second), 10, cache=AnswerCache(cache)),
                       unlabeled, None, workdir, resume=True)
    both = first.images + second.images
    assert len(both) == len(set(both)) == 400  # nothing sent twice across the processes
    # the batch sent when the first process died is charged too (a server may have billed it)
    assert report["teacher_queries"] == 400 + 50 and report["n_train"] == 400
    chosen = np.load(os.path.join(workdir, "selection.npz"))
    assert sorted(chosen.files) == ["cutmix:1", "cutmix:2", "cutmix:3"]


def test_a_one_round_selection_file_resumes_only_with_one_round(idx_dir, tmp_path):
    from kd_keras.synthesis.selection import _load

    path = str(tmp_path / "selection.npz")
    np.savez(path, cutmix=np.arange(10))
    assert _load(path, {"cutmix": [6, 4]}, 1)["cutmix:1"].tolist() == [6, 7, 8, 9]
    with pytest.raises(ConfigError, match="selection.rounds=1"):
        _load(path, {"cutmix": [6, 2, 2]}, 2)


@pytest.mark.slow
def test_stored_candidates_chosen_in_rounds_train_on_the_pixels_answered(idx_dir, tmp_path):
    """A network's samples (stored, not remade) chosen in rounds: every training image is
    bit for bit one the teacher answered, with that answer."""
    from kd_keras.distill.labelled import build_training_set
    from kd_keras.distill.preflight import preflight

    answers = {}

    def teacher_fn(x):
        out = toy_teacher(x)
        answers.update((row.tobytes(), a) for row, a in zip(np.asarray(x), out))
        return out

    config = _config(idx_dir, rounds=2)
    config.synthesis.sources, config.selection.generators = "real,mixup,cvae", "all"
    unlabeled = data.load("fashion_mnist:train[:100]", (28, 28, 1), data_dir=idx_dir,
                          compact=True).unlabeled()
    ctx = preflight(config, Teacher(CallableBackend(teacher_fn), 10), unlabeled, None,
                    str(tmp_path / "w"))
    labelled, _ = build_training_set(ctx)
    assert len(labelled) == 400 and len(answers) == 400
    for x, y in labelled.dataset(64, seed=1).as_numpy_iterator():
        for image, target in zip(x, y):
            np.testing.assert_allclose(target, answers[image.tobytes()], rtol=1e-5, atol=1e-7)
    assert isinstance(labelled.parts["cvae"].candidates.rows.images, np.memmap)


@pytest.mark.slow
def test_more_rounds_than_images_to_choose_still_spends_the_plan(idx_dir, tmp_path):
    config = _config(idx_dir, "uncertainty", rounds=5)
    config.synthesis.num_synthetic, config.selection.warmup = 3, 0.0  # 3 images, 5 rounds
    unlabeled = data.load("fashion_mnist:train[:100]", (28, 28, 1), data_dir=idx_dir).unlabeled()
    sent = _Sent()
    report = run_fsbbt(config, Teacher(CallableBackend(sent), 10), unlabeled, None,
                       str(tmp_path / "w"))
    assert report["images_per_source"] == {"real": 100, "cutmix": 3}
    assert report["teacher_queries"] == 103 == len(set(sent.images))
