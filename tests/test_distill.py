"""The FS-BBT run end to end: resume, errors found before paying, label-only teachers,
budgets, selection, augmentation, mixed precision, epochs and weight averaging."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import make_images, run_command
from kd_keras import data, models
from kd_keras.config import base_config
from kd_keras.distill import Distiller
from kd_keras.distill.run import run_fsbbt
from kd_keras.distill.augment import augment_dataset
from kd_keras.errors import BadAnswerError, ConfigError, DataError
from kd_keras.teachers import AnswerCache, CallableBackend, Teacher


W = np.random.default_rng(1).normal(size=(784, 10)).astype(np.float32)


def toy_teacher(images):
    """A fixed linear teacher over the bright-patch images, answering probabilities."""
    z = (images.reshape(len(images), -1) - 0.2) @ W * 0.5
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def tiny_config(idx_dir):
    c = base_config(name="tiny", train="fashion_mnist:train", test="fashion_mnist:test",
                    unlabeled="fashion_mnist:train[:100]", image_shape=(28, 28, 1),
                    num_classes=10, teacher_model="lenet5", student_model="lenet5_half",
                    teacher_epochs=2, num_synthetic=300, cvae_epochs=2)
    c.data.data_dir = idx_dir
    c.synthesis.sources = "real,mixup,cvae"  # every stage of FS-BBT, with selection
    c.synthesis.selection = "uncertainty"
    c.student.epochs = 2
    c.student.batch_size = 50
    c.student.augment_check = 0  # sizes here are real + synthetic; test_augment_check.py
    c.unpaid.count = 0  # one student; the unpaid images' first students: test_unpaid.py
    return c


class _Crash(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("simulated crash")


class _Epochs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = []

    def on_epoch_begin(self, epoch, logs=None):
        self.seen.append(epoch)


@pytest.mark.slow
@pytest.mark.parametrize("selection", ["random", "uncertainty"])
def test_resume_after_crash_sends_no_new_queries(idx_dir, tmp_path, selection):
    config = tiny_config(idx_dir)
    config.synthesis.selection = selection
    config.selection.probe_epochs = 1
    unlabeled = data.load("fashion_mnist:train[:100]", (28, 28, 1), data_dir=idx_dir).unlabeled()
    cache = str(tmp_path / "cache.sqlite")
    workdir = str(tmp_path / "run")

    first = Teacher(CallableBackend(toy_teacher), 10, cache=AnswerCache(cache))
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_fsbbt(config, first, unlabeled, None, workdir, callbacks=[_Crash()])
    assert first.stats.sent == 400  # N real + M synthetic, each once
    assert os.path.exists(os.path.join(workdir, "checkpoints"))

    second = Teacher(CallableBackend(toy_teacher), 10, cache=AnswerCache(cache))
    epochs = _Epochs()
    report = run_fsbbt(config, second, unlabeled, None, workdir, resume=True, callbacks=[epochs])
    assert second.stats.sent == 0 and second.stats.cache_hits == 400
    assert epochs.seen == [1]  # training continued from the checkpoint, not from scratch
    # The run paid 400 answers in all, none of them in the resumed process.
    assert report["teacher_queries"] == 400 and report["teacher_queries_this_process"] == 0
    assert report["n_train"] == 400


def test_wrong_class_count_is_a_clear_error(idx_dir, tmp_path):
    config = tiny_config(idx_dir)
    unlabeled = data.load("fashion_mnist:train[:100]", (28, 28, 1), data_dir=idx_dir)
    seven = Teacher(CallableBackend(lambda x: toy_teacher(x)[:, :7] / toy_teacher(x)[:, :7].sum(1, keepdims=True)), 10)
    with pytest.raises(BadAnswerError, match="7 classes, the config expects 10"):
        run_fsbbt(config, seven, unlabeled, None, str(tmp_path / "w"))


def test_wrong_image_shape_is_a_clear_error(idx_dir, tmp_path):
    config = tiny_config(idx_dir)
    x, _ = make_images(20, size=32)
    small = data.ImageSet(x[..., None].astype(np.float32) / 255, name="npz:big.npz")
    teacher = Teacher(CallableBackend(toy_teacher), 10)
    with pytest.raises(DataError, match=r"npz:big.npz: images have shape \(32, 32, 1\), "
                                        r"the model expects \(28, 28, 1\)"):
        run_fsbbt(config, teacher, small, None, str(tmp_path / "w"))
    assert teacher.stats.requests == 0


@pytest.mark.slow
def test_label_only_teacher_with_hard_loss(idx_dir, tmp_path):
    config = tiny_config(idx_dir)
    config.query.output = "label"
    config.student.loss = "hard_ce"
    config.synthesis.sources = "real,mixup"
    config.student.epochs = 1
    unlabeled = data.load("fashion_mnist:train[:100]", (28, 28, 1), data_dir=idx_dir)
    teacher = Teacher(CallableBackend(lambda x: toy_teacher(x).argmax(1)), 10, output="label")
    report = run_fsbbt(config, teacher, unlabeled, unlabeled, str(tmp_path / "w"))
    assert report["images_per_source"] == {"real": 100, "mixup": 300}
    # every image answered once: identical images (a pair (i, j, lam) and (j, i, 1 - lam)
    # make the same MixUp image) are sent once, so a few answers may be saved; the selected
    # part is made again as one recipe, its 150 warm-up answers read from the cache (free)
    assert 395 <= report["teacher_queries"] <= 400
    assert report["teacher_cache_hits"] <= 150 + 400 - report["teacher_queries"]


@pytest.mark.slow
def test_distill_command_end_to_end(idx_dir, tmp_path):
    workdir = tmp_path / "run"
    proc = run_command("distill.py", "--config=configs/fashion_mnist.py:paper,quick",
                       f"--config.data.data_dir={idx_dir}", "--config.teacher.epochs=3",
                       "--config.synthesis.num_synthetic=400", "--config.cvae.epochs=2",
                       "--config.student.epochs=2", "--unlabeled=fashion_mnist:train[:100]",
                       "--eval=fashion_mnist:test", f"--workdir={workdir}")
    assert "done: student_accuracy" in proc.stdout
    report = json.load(open(workdir / "report.json"))
    for key in ("student_accuracy", "teacher_accuracy", "agreement", "teacher_queries",
                "eval_queries", "n_real", "images_per_source", "budget", "wall_seconds"):
        assert key in report, key
    per_source = report["images_per_source"]
    assert per_source["real"] == 100 and per_source["mixup"] + per_source["cvae"] == 400
    assert per_source["cvae"] > 0 and report["teacher_queries"] == 500
    assert report["eval_queries"] == 200
    assert report["teacher_accuracy"] > 0.5
    config = json.load(open(workdir / "config.json"))
    assert config["config"]["student"]["epochs"] == 2
    assert config["flags"]["unlabeled"] == "fashion_mnist:train[:100]"
    loaded = tf.saved_model.load(str(workdir / "student"))
    test = data.load("fashion_mnist:test", data_dir=idx_dir)
    probs = loaded.serve(tf.constant(test.images[:8])).numpy()
    assert probs.shape == (8, 10)
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    student = keras.saving.load_model(str(workdir / "student.keras"))
    np.testing.assert_allclose(tf.nn.softmax(student(test.images[:8])), probs, atol=1e-5)
    tags = set()
    for root, _, files in os.walk(workdir / "tb" / "synthesis"):
        for f in files:
            for event in tf.compat.v1.train.summary_iterator(os.path.join(root, f)):
                tags.update(v.tag for v in event.summary.value)
    assert {"samples/real", "samples/mixup", "samples/cvae", "teacher/queries_sent"} <= tags
    assert os.listdir(workdir / "tb" / "student")
    accuracy_steps = []  # the student's eval accuracy after every epoch
    for root, _, files in os.walk(workdir / "tb" / "student" / "eval"):
        for f in files:
            for event in tf.compat.v1.train.summary_iterator(os.path.join(root, f)):
                accuracy_steps += [event.step for v in event.summary.value
                                   if v.tag == "epoch_student_accuracy"]
    assert sorted(accuracy_steps) == [0, 1]

    # Bad input through the command: one clear line, no traceback.
    bad = run_command("distill.py", "--config=configs/fashion_mnist.py:quick",
                      f"--config.data.data_dir={idx_dir}", f"--teacher=savedmodel:{workdir}/student",
                      "--config.data.num_classes=7", "--unlabeled=fashion_mnist:train[:50]",
                      "--eval=", f"--workdir={tmp_path}/bad", check=False)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "error: teacher answered 10 classes, the config expects 7" in bad.stderr
    typo = run_command("distill.py", "--config=configs/fashion_mnist.py:quick",
                       f"--config.data.data_dir={idx_dir}", f"--teacher=savedmodel:{workdir}/student",
                       "--config.student.model=lenet7", "--config.synthesis.sources=real",
                       "--unlabeled=fashion_mnist:train[:50]", "--eval=", f"--workdir={tmp_path}/typo",
                       check=False)
    assert typo.returncode == 1 and "Traceback" not in typo.stderr
    assert "error: student.model must be one of" in typo.stderr


def test_budget_stops_the_run_and_keeps_what_was_paid(idx_dir, tmp_path):
    from kd_keras.errors import BudgetExceededError

    config = tiny_config(idx_dir)
    unlabeled = data.load("fashion_mnist:train[:100]", (28, 28, 1), data_dir=idx_dir).unlabeled()
    cache = AnswerCache(str(tmp_path / "cache.sqlite"))
    teacher = Teacher(CallableBackend(toy_teacher), 10, cache=cache, budget=250)
    with pytest.raises(BudgetExceededError, match="query budget of 250"):
        run_fsbbt(config, teacher, unlabeled, None, str(tmp_path / "w"))
    assert teacher.stats.sent <= 250 and len(cache) == teacher.stats.sent >= 100


@pytest.mark.slow
def test_cifar_shaped_run_with_normal_cvae(tmp_path):
    """The CIFAR path: 32x32x3 images, AlexNet-Half student, Normal-likelihood CVAE."""
    c = base_config(name="cifar_tiny", train="unused", test="unused", unlabeled="unused",
                    image_shape=(32, 32, 3), num_classes=10, teacher_model="alexnet",
                    student_model="alexnet_half", teacher_epochs=1, num_synthetic=60,
                    cvae_epochs=1, cvae_likelihood="normal")
    c.student.epochs, c.student.batch_size = 1, 20
    c.synthesis.sources = "real,mixup,cvae"
    c.student.augment = "flip_shift"
    c.unpaid.count = 0  # test_unpaid.py
    rng = np.random.default_rng(0)
    images = data.ImageSet(rng.random((40, 32, 32, 3), dtype=np.float32), name="random")
    proj = rng.normal(size=(32 * 32 * 3, 10)).astype(np.float32) * 0.05

    def teacher_fn(x):
        z = x.reshape(len(x), -1) @ proj
        return np.exp(z) / np.exp(z).sum(1, keepdims=True)

    teacher = Teacher(CallableBackend(teacher_fn), 10)
    report = run_fsbbt(c, teacher, images, images, str(tmp_path / "w"))
    assert sum(report["images_per_source"].values()) == 100 and report["teacher_queries"] == 100
    loaded = tf.saved_model.load(str(tmp_path / "w" / "student"))
    assert loaded.serve(tf.constant(images.images[:2])).shape == (2, 10)


@pytest.mark.slow
def test_uncertainty_selection_spends_the_same_budget(idx_dir, tmp_path):
    config = tiny_config(idx_dir)
    config.synthesis.selection = "uncertainty"
    config.selection.probe_epochs = 1
    config.student.epochs = 1
    unlabeled = data.load("fashion_mnist:train[:100]", (28, 28, 1), data_dir=idx_dir).unlabeled()
    teacher = Teacher(CallableBackend(toy_teacher), 10)
    report = run_fsbbt(config, teacher, unlabeled, None, str(tmp_path / "w"))
    assert sum(report["images_per_source"].values()) == 400
    assert report["teacher_queries"] == 400  # N + M, as with random MixUp pairs
    config.synthesis.selection = "most_confusing"
    with pytest.raises(ValueError, match="synthesis.selection"):
        run_fsbbt(config, teacher, unlabeled, None, str(tmp_path / "w2"))


def test_augmentation_moves_pixels_and_keeps_targets():
    x = np.zeros((16, 8, 8, 1), np.float32)
    x[:, 2:5, 1:3] = 1.0  # an off-centre block: shifts and mirrors both move it
    y = np.eye(4, dtype=np.float32)[np.arange(16) % 4]
    batches = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    assert augment_dataset(batches, "none") is batches
    for name in ("shift", "flip", "flip_shift"):
        ax, ay = map(np.concatenate, zip(*augment_dataset(batches, name, 0.25).as_numpy_iterator()))
        assert ax.shape == x.shape and np.array_equal(ay, y)
        moved = np.abs(ax - x).reshape(16, -1).max(1) > 0.5
        assert moved.sum() >= 8, f"{name} moved only {moved.sum()} of 16 images"
        assert np.all(ax >= 0) and np.all(ax <= 1)
    with pytest.raises(ConfigError, match="unknown student.augment 'rotate'"):
        augment_dataset(batches, "rotate")


@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_batch_mixes_mix_targets_as_they_mix_pixels(kind):
    """Image i is filled with i + 1 and answers class i: each mixed image's target must give
    each of its two images the share of the pixels it gave."""
    from kd_keras.distill.augment import mix_batches

    n = 8
    x = np.broadcast_to(np.arange(1, n + 1, dtype=np.float32)[:, None, None, None],
                        (n, 10, 12, 1)).copy()
    y = np.eye(n, dtype=np.float32)
    batches = tf.data.Dataset.from_tensor_slices((x, y)).batch(n).repeat(2)
    assert mix_batches(batches, "none") is batches
    epochs = list(mix_batches(batches, kind, share=1.0, seed=3).as_numpy_iterator())
    mx, my = epochs[0]
    mixed = 0
    for i in range(n):
        np.testing.assert_allclose(my[i].sum(), 1.0, rtol=1e-6)
        classes = np.flatnonzero(my[i] > 1e-6)
        assert i in classes and len(classes) <= 2
        if len(classes) == 1:
            assert np.all(mx[i] == x[i])
            continue
        mixed += 1
        j = classes[classes != i][0]
        if kind == "mixup":
            np.testing.assert_allclose(mx[i], my[i, i] * (i + 1) + my[i, j] * (j + 1), rtol=1e-5)
        else:
            assert set(np.unique(mx[i])) <= {i + 1.0, j + 1.0}
            assert np.mean(mx[i] == i + 1) == pytest.approx(my[i, i], abs=1e-6)
    assert mixed >= n // 2
    assert not np.array_equal(epochs[0][0], epochs[1][0])  # new mixes every epoch
    again = list(mix_batches(batches, kind, share=1.0, seed=3).as_numpy_iterator())
    assert np.array_equal(again[0][0], mx)  # ... and the same ones in every run
    untouched = mix_batches(batches, kind, share=0.0)
    assert untouched is batches
    with pytest.raises(ConfigError, match="student.batch_mix 'mixed'"):
        mix_batches(batches, "mixed")


def test_mixed_float16_uses_the_optimizers_loss_scaling():
    """Under mixed_float16, Keras wraps the optimizer in a LossScaleOptimizer that unscales
    gradients; train_step must scale the loss first, or every update shrinks 2**15-fold."""
    x, labels = make_images(64)
    x = x[..., None].astype(np.float32) / 255
    y = np.eye(10, dtype=np.float32)[labels] * 0.9 + 0.01

    def one_step(policy):
        keras.mixed_precision.set_global_policy(policy)
        try:
            keras.utils.set_random_seed(0)
            student = models.build("lenet5_half", (28, 28, 1), 10)
            d = Distiller(student)
            d.compile(optimizer=keras.optimizers.SGD(0.5))
            before = [w.numpy().astype(np.float32) for w in student.trainable_weights]
            d.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(64), epochs=1, verbose=0,
                  shuffle=False)
            after = [w.numpy().astype(np.float32) for w in student.trainable_weights]
            return d, np.concatenate([(a - b).ravel() for a, b in zip(after, before)])
        finally:
            keras.mixed_precision.set_global_policy("float32")

    mixed, step16 = one_step("mixed_float16")
    _, step32 = one_step("float32")
    assert isinstance(mixed.optimizer, keras.optimizers.LossScaleOptimizer)
    assert np.all(np.isfinite(step16))
    ratio = np.linalg.norm(step16) / np.linalg.norm(step32)
    assert 0.8 < ratio < 1.25, ratio  # the same step size, not 2**-15 of it


@pytest.mark.slow
def test_budget_first_plans_m_and_refuses_an_explicit_m_that_cannot_fit(idx_dir, tmp_path):
    from kd_keras.distill.plan import plan_budget

    config = tiny_config(idx_dir)
    config.query.budget = 250
    unlabeled = data.load("fashion_mnist:train[:100]", (28, 28, 1), data_dir=idx_dir).unlabeled()
    teacher = Teacher(CallableBackend(toy_teacher), 10, budget=250)
    report = run_fsbbt(config, teacher, unlabeled, None, str(tmp_path / "w"))
    assert sum(report["images_per_source"].values()) == 250 and report["teacher_queries"] == 250
    assert report["budget"] == 250 and report["student_epochs"] == 2
    assert config.synthesis.num_synthetic == 300  # the caller's config is not changed
    config.synthesis.num_synthetic, config.synthesis.fixed_count = 300, True
    with pytest.raises(ConfigError, match="needs up to 400 teacher answers"):
        plan_budget(config, 100)
    config.query.budget = 50
    with pytest.raises(ConfigError, match="less than the 100 real images"):
        plan_budget(config, 100)
    config.synthesis.fixed_count = False
    config.query.budget = 100_000  # a larger budget grows M too: the plan follows B
    assert plan_budget(config, 100).synthesis.num_synthetic == 99_900
    config.query.budget = 100  # B = N: the real images alone, and the run still ends
    assert plan_budget(config, 100).synthesis.num_synthetic == 0
    report = run_fsbbt(config, Teacher(CallableBackend(toy_teacher), 10, budget=100), unlabeled,
                       None, str(tmp_path / "w0"))
    assert report["images_per_source"] == {"real": 100} and report["teacher_queries"] == 100


def test_auto_epochs_give_a_small_budget_more_epochs_cap_a_large_one_and_keep_a_set_number():
    from kd_keras.config import make_paper
    from kd_keras.distill.student import planned_epochs

    s = base_config(name="t", train="", test="", unlabeled="", image_shape=(28, 28, 1),
                    num_classes=10, teacher_model="lenet5", student_model="lenet5_half",
                    teacher_epochs=1, num_synthetic=0, cvae_epochs=1).student
    assert (s.epochs, s.batch_size, s.min_steps) == (0, 128, 7900)
    assert planned_epochs(s, 10_000) == 100  # 79 steps an epoch
    assert planned_epochs(s, 50_000) == 50   # 391 steps an epoch: already more than 7,900
    assert planned_epochs(s, 100) == 200     # at most 200
    s.max_steps = 40_000
    assert planned_epochs(s, 250_000) == 20  # 1,954 steps an epoch: 20 within the cap, not 50
    assert planned_epochs(s, 50_000) == 50   # 19,550 steps: under the cap
    assert planned_epochs(s, 10_000_000) == 1  # at least one epoch
    s.max_steps = 0
    assert planned_epochs(s, 250_000) == 50
    s.min_steps = 0
    assert planned_epochs(s, 10_000) == 50
    s.epochs = 3
    assert planned_epochs(s, 10_000) == 3    # a number the user set is kept
    paper = make_paper(base_config(name="t", train="", test="", unlabeled="",
                                   image_shape=(28, 28, 1), num_classes=10,
                                   teacher_model="lenet5", student_model="lenet5_half",
                                   teacher_epochs=1, num_synthetic=0, cvae_epochs=1))
    assert planned_epochs(paper.student, 10_000) == 50  # the paper's method: 50 epochs


class _Steps(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.steps = self.params["steps"]


def test_real_repeat_shows_the_real_images_more_often_for_no_answers(idx_dir, tmp_path):
    config = tiny_config(idx_dir)
    config.synthesis.sources, config.synthesis.selection = "real,mixup", "random"
    config.student.real_repeat = 3
    unlabeled = data.load("fashion_mnist:train[:100]", (28, 28, 1), data_dir=idx_dir).unlabeled()
    steps = _Steps()
    report = run_fsbbt(config, Teacher(CallableBackend(toy_teacher), 10), unlabeled, None,
                       str(tmp_path / "w"), callbacks=[steps])
    assert report["teacher_queries"] == 400  # 100 real + 300 MixUp, each paid once
    assert steps.steps == (3 * 100 + 300) // 50  # the real images three times an epoch


@pytest.mark.slow
def test_eval_buys_at_most_the_teacher_sample(idx_dir, tmp_path):
    config = tiny_config(idx_dir)
    config.student.epochs = 1
    config.eval.teacher_sample = 30
    unlabeled = data.load("fashion_mnist:train[:100]", (28, 28, 1), data_dir=idx_dir).unlabeled()
    eval_set = data.load("fashion_mnist:test", (28, 28, 1), data_dir=idx_dir)
    teacher = Teacher(CallableBackend(toy_teacher), 10)
    report = run_fsbbt(config, teacher, unlabeled, eval_set, str(tmp_path / "w"))
    assert report["n_eval"] == 200 and report["eval_teacher_sample"] == 30
    assert report["eval_queries"] == 30 and "student_accuracy" in report
    assert "teacher_accuracy" in report and "agreement" in report
    config.eval.teacher_sample = 0
    report = run_fsbbt(config, Teacher(CallableBackend(toy_teacher), 10), unlabeled, eval_set,
                       str(tmp_path / "w2"))
    assert report["eval_queries"] == 0 and "agreement" not in report


class _RecordWeights(keras.callbacks.Callback):
    """The student's weights after every training step (``self.model`` is the Distiller)."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_batch_end(self, batch, logs=None):
        self.seen.append([w.copy() for w in self.model.student.get_weights()])


def test_weight_averaging_leaves_the_moving_average_in_the_student(idx_dir, tmp_path, capsys):
    """student.ema = m: the saved student holds m-averaged weights of every step, by hand."""
    from kd_keras.context import RunContext
    from kd_keras.distill.store import LabelledSet
    from kd_keras.distill.student import train_student
    from kd_keras.workdir import Workdir

    from kd_keras.distill.student import student_optimizer

    c = tiny_config(idx_dir)
    c.student.ema, c.student.steps_per_execution, c.student.epochs = 0.8, 1, 2
    c.student.batch_size = 10
    x, labels = make_images(100)
    x = x[..., None].astype(np.float32) / 255
    y = np.eye(10, dtype=np.float32)[labels]
    ctx = RunContext(config=c, workdir=Workdir(str(tmp_path)),
                     strategy=tf.distribute.get_strategy())
    record = _RecordWeights()
    student = train_student(ctx, LabelledSet.of_arrays(x, y), callbacks=[record], verbose=0)
    assert len(record.seen) == 20  # 2 epochs of 10 batches of 10: a horizon of 5 fits
    average = record.seen[0]
    for weights in record.seen[1:]:
        average = [0.8 * a + 0.2 * w for a, w in zip(average, weights)]
    final = student.get_weights()
    for a, w, last in zip(average, final, record.seen[-1]):
        np.testing.assert_allclose(w, a, atol=1e-5)
    assert any(not np.allclose(w, last) for w, last in zip(final, record.seen[-1]))
    assert "using" not in capsys.readouterr().out
    # a horizon longer than a quarter of the run keeps early weights: it is shortened
    c.student.ema = 0.999
    assert student_optimizer(c.student, 20).ema_momentum == pytest.approx(0.8)
    assert "student.ema=0.999 averages over about 1000 steps" in capsys.readouterr().out
