"""Self-training on unpaid images (kd_keras/distill/unpaid.py): the teacher never sees an
unpaid image, the second student's set holds them with the first student's answers, and
settings that cannot work fail before the first answer."""

import keras
import numpy as np
import pytest

from kd_keras import data
from kd_keras.distill.run import fsbbt
from kd_keras.errors import ConfigError
from kd_keras.teachers import CallableBackend, Teacher
from test_distill import tiny_config, toy_teacher


def _config(idx_dir, count=400, min_confidence=0.0):
    config = tiny_config(idx_dir)
    config.synthesis.sources, config.synthesis.selection = "real,cutmix", "random"
    config.synthesis.num_synthetic, config.student.epochs = 200, 1
    config.unpaid.count, config.unpaid.min_confidence = count, min_confidence
    config.unpaid.students, config.unpaid.model = 1, ""  # the student's own; others say so
    return config


def _unlabeled(idx_dir):
    return data.load("fashion_mnist:train[:100]", (28, 28, 1), data_dir=idx_dir,
                     compact=True).unlabeled()


def _refused_before_any_answer(config, idx_dir, workdir, match: str) -> None:
    """The run with ``config`` stops with a ConfigError matching ``match``, no answer bought."""
    with pytest.raises(ConfigError, match=match):
        fsbbt(config, Teacher(CallableBackend(lambda x: pytest.fail("a paid answer")), 10),
              _unlabeled(idx_dir), None, str(workdir))


@pytest.mark.parametrize("generator", ["cutmix", "warp"])
def test_unpaid_images_are_answered_by_the_first_student_not_the_teacher(idx_dir, tmp_path,
                                                                         generator):
    sent = []

    def teacher_fn(x):
        sent.append(len(x))
        return toy_teacher(x)

    teacher = Teacher(CallableBackend(teacher_fn), 10)
    config = _config(idx_dir)
    config.unpaid.generator = generator
    result = fsbbt(config, teacher, _unlabeled(idx_dir), None, str(tmp_path / "w"))
    report = result.report
    assert report["teacher_queries"] == sum(sent) == 300  # the 100 real and 200 CutMix only
    assert report["images_per_source"] == {"real": 100, "cutmix": 200, "unpaid": 400}
    assert report["n_unpaid"] == 400 and report["n_train"] == 700
    assert "student_unpaid_train" in report["stage_seconds"]
    assert (tmp_path / "w" / "tb" / "student_unpaid").is_dir()


def test_the_confidence_cut_leaves_out_what_the_first_student_is_unsure_of(idx_dir, tmp_path):
    from kd_keras.distill.preflight import preflight
    from kd_keras.distill.labelled import training_set
    from kd_keras.distill.student import train_student
    from kd_keras.distill.unpaid import unpaid_part

    teacher = Teacher(CallableBackend(toy_teacher), 10)
    ctx = preflight(_config(idx_dir, count=300), teacher, _unlabeled(idx_dir), None,
                    str(tmp_path / "w"))
    ctx.labelled = training_set(ctx)
    first = train_student(ctx, ctx.labelled, epochs=1, verbose=0)
    every = unpaid_part(ctx, first)
    assert len(every) == 300 and teacher.paid == 300  # no answer bought for them
    np.testing.assert_allclose(every.targets.sum(1), 1.0, rtol=1e-5)
    cut = float(np.median(every.targets.max(1)))
    ctx.config.unpaid.min_confidence = cut
    sure = unpaid_part(ctx, first)
    assert 0 < len(sure) < 300 and np.all(sure.targets.max(1) >= cut)
    # the same recipe draws the same images and the same answers, the unsure ones dropped
    kept = np.flatnonzero(every.targets.max(1) >= cut)
    np.testing.assert_allclose(sure.targets, every.targets[kept], rtol=1e-5)


def test_unpaid_settings_that_cannot_work_fail_before_any_answer(idx_dir, tmp_path):
    config = _config(idx_dir)
    config.student.targets, config.synthesis.sources = "true_labels", "real"
    _refused_before_any_answer(config, idx_dir, tmp_path / "w2", "needs student.targets=teacher")
    config = _config(idx_dir, count=0)
    config.unpaid.paid_repeat = 2  # nothing to repeat the paid images beside
    _refused_before_any_answer(config, idx_dir, tmp_path / "w3", "unpaid.paid_repeat=2 repeats")


def test_several_first_students_answer_the_unpaid_images_together(idx_dir, tmp_path):
    """unpaid.students = 2: one more first student (another seed) is trained on the same paid
    set, and the unpaid images' targets are the average of both students' answers."""
    from kd_keras.distill.labelled import training_set
    from kd_keras.distill.preflight import preflight
    from kd_keras.distill.primer import soft_predictions
    from kd_keras.distill.student import train_student
    from kd_keras.distill.unpaid import first_students, labeller_seed, unpaid_part

    teacher = Teacher(CallableBackend(toy_teacher), 10)
    config = _config(idx_dir, count=200)
    ctx = preflight(config, teacher, _unlabeled(idx_dir), None, str(tmp_path / "w"))
    ctx.labelled = training_set(ctx)
    first = train_student(ctx, ctx.labelled, epochs=1, verbose=0)
    alone = unpaid_part(ctx, first)
    ctx.config.unpaid.students = 2
    together = unpaid_part(ctx, first)
    assert teacher.paid == 300  # the real and CutMix images only, whatever answers the rest
    assert first_students(ctx.config) == [("lenet5_half", config.seed),
                                          ("lenet5_half", labeller_seed(config, 1))]
    other = train_student(ctx, ctx.labelled, verbose=0, seed=labeller_seed(config, 1))
    theirs = soft_predictions(other, together.candidates, 1.0)
    np.testing.assert_allclose(together.targets, (alone.targets + theirs) / 2, atol=1e-5)
    assert np.abs(theirs - alone.targets).max() > 1e-3  # another seed: another student


def test_first_students_of_another_model_label_the_unpaid_images(idx_dir, tmp_path,
                                                                 monkeypatch, capsys):
    """unpaid.model: the first students are that model (here 'teacher': the config's
    teacher.model, lenet5, for a lenet5_half student); the student delivered is still the
    student's model, and the report gives each first student's and their ensemble's accuracy
    on the eval set."""
    from kd_keras import models

    teacher = Teacher(CallableBackend(toy_teacher), 10)
    config = _config(idx_dir, count=200)
    config.student.model, config.unpaid.model, config.unpaid.students = "lenet5_half", "teacher", 2
    assert config.teacher.model == "lenet5"
    eval_set = data.load("fashion_mnist:test[:200]", (28, 28, 1), data_dir=idx_dir, compact=True)
    built, real_build = [], models.build

    def build(name, *args):
        built.append(name)
        return real_build(name, *args)

    monkeypatch.setattr(models, "build", build)
    result = fsbbt(config, teacher, _unlabeled(idx_dir), eval_set, str(tmp_path / "w"))
    # the student built once to check it, 2 labellers, then the student: no first
    # lenet5_half is trained, it would label nothing
    assert built == ["lenet5_half", "lenet5", "lenet5", "lenet5_half"]
    assert "student_train" not in result.report["stage_seconds"]
    half = real_build("lenet5_half", (28, 28, 1), 10)
    assert result.student.count_params() == half.count_params()
    scores = result.report["unpaid_labellers"]
    assert len(scores["each"]) == 2 and all(0.0 <= a <= 1.0 for a in scores["each"])
    assert 0.0 <= scores["averaged"] <= 1.0
    assert result.report["teacher_queries"] == 300  # the labellers bought nothing
    assert result.report["stage_seconds"]["unpaid_labellers"] > 0
    out = capsys.readouterr().out  # each labeller's training shows its progress
    assert "unpaid: first student 1/2: epoch 1/1" in out
    assert "unpaid: first student 2/2: epoch 1/1" in out
    config.unpaid.model = "no_such_model"
    _refused_before_any_answer(config, idx_dir, tmp_path / "w2", "unpaid.model")


def test_first_students_learn_at_their_own_temperature(idx_dir, tmp_path, monkeypatch,
                                                       capsys):
    """unpaid.temperature: the first students (here one lenet5) learn the paid answers at it,
    the student at student.temperature; with the student's own first students it is refused
    before any answer (the first of them is the run's first distilled student)."""
    from kd_keras.distill import student as student_module

    temperatures, real_get_loss = [], student_module.get_loss

    def get_loss(name, temperature, **settings):
        temperatures.append(temperature)
        return real_get_loss(name, temperature, **settings)

    monkeypatch.setattr(student_module, "get_loss", get_loss)
    config = _config(idx_dir, count=200)
    config.unpaid.model, config.unpaid.temperature = "teacher", 4.0
    assert config.student.loss == "kl" and config.student.temperature == 2.0
    result = fsbbt(config, Teacher(CallableBackend(toy_teacher), 10), _unlabeled(idx_dir), None,
                   str(tmp_path / "w"))
    assert temperatures == [4.0, 2.0]  # the first student, then the student
    assert result.report["n_unpaid"] == 200 and result.report["teacher_queries"] == 300
    out = capsys.readouterr().out
    assert "training lenet5 on 300 images for 1 epochs (loss kl T=4," in out
    assert "on 500 images for 1 epochs (loss kl T=2," in out
    config.unpaid.model = ""
    _refused_before_any_answer(config, idx_dir, tmp_path / "w2",
                               "unpaid.temperature=4 needs first students of another")
    config.unpaid.model, config.student.loss = "teacher", "smooth_ce"
    _refused_before_any_answer(config, idx_dir, tmp_path / "w3",
                               "unpaid.temperature=4 needs a loss with a temperature")


def test_first_students_train_for_their_own_epochs(idx_dir, tmp_path, capsys):
    """unpaid.epochs: the first students of another model (here two lenet5) train that many
    epochs, the student its own; with the student's own first students it is refused before
    any answer (the first of them is the run's first distilled student)."""
    config = _config(idx_dir, count=200)
    config.unpaid.model, config.unpaid.students, config.unpaid.epochs = "teacher", 2, 3
    result = fsbbt(config, Teacher(CallableBackend(toy_teacher), 10), _unlabeled(idx_dir), None,
                   str(tmp_path / "w"))
    assert result.report["n_unpaid"] == 200 and result.report["teacher_queries"] == 300
    out = capsys.readouterr().out
    assert out.count("training lenet5 on 300 images for 3 epochs") == 2
    assert "unpaid: first student 2/2: epoch 3/3" in out
    assert "on 500 images for 1 epochs" in out  # the student: student.epochs
    config.unpaid.model = ""
    _refused_before_any_answer(config, idx_dir, tmp_path / "w2",
                               "unpaid.epochs=3 needs first students of another model")


class _EachTraining(keras.callbacks.Callback):
    """The steps per epoch of every training it watches, in order."""

    def __init__(self):
        super().__init__()
        self.steps = []

    def on_train_begin(self, logs=None):
        self.steps.append(self.params["steps"])


def test_paid_images_repeat_beside_the_unpaid_ones_for_no_answers(idx_dir, tmp_path):
    """unpaid.paid_repeat=3: the second student sees every paid image (the real ones already
    twice an epoch, student.real_repeat=2) three times as often beside the 400 unpaid images,
    the first student as before; nothing more is paid for."""
    config = _config(idx_dir)
    config.unpaid.paid_repeat, config.student.real_repeat = 3, 2
    each = _EachTraining()
    result = fsbbt(config, Teacher(CallableBackend(toy_teacher), 10), _unlabeled(idx_dir), None,
                   str(tmp_path / "w"), callbacks=[each])
    assert result.report["teacher_queries"] == 300 and result.report["n_unpaid"] == 400
    batch = int(config.student.batch_size)
    assert each.steps == [(2 * 100 + 200) // batch, (3 * (2 * 100 + 200) + 400) // batch]


def test_first_students_epochs_by_steps_drop_the_floor_of_50_only():
    """unpaid.epochs=-1: about student.min_steps steps over the paid set, so fewer epochs
    than the student's 50 only where 50 would take more steps (a large budget); elsewhere
    the student's plan, and never more."""
    from conftest import ROOT

    from kd_keras.config import from_file
    from kd_keras.distill.student import planned_epochs
    from kd_keras.distill.unpaid import labeller_epochs

    config = from_file("configs/fashion_mnist.py", ROOT)
    s = config.student
    assert (s.epochs, s.batch_size, s.min_steps) == (0, 128, 7900)
    assert (config.unpaid.epochs, config.unpaid.model) == (-1, "teacher")  # the defaults
    assert labeller_epochs(config, 50400) == 21 < planned_epochs(s, 50400) == 50  # 394 a step
    for n in (2000, 5400, 10400, 20000):  # 50 epochs or more already aim at min_steps
        assert labeller_epochs(config, n) == planned_epochs(s, n) >= 50
    config.unpaid.epochs = 0
    assert labeller_epochs(config, 50400) == 50
    config.unpaid.epochs = 7
    assert labeller_epochs(config, 50400) == 7
    config.unpaid.epochs, s.epochs = -1, 5  # a fixed student plan is never exceeded
    assert labeller_epochs(config, 50400) == 5
    config.unpaid.model, s.epochs = "", 0  # the student's own: as the first of them, 50
    assert labeller_epochs(config, 50400) == 50


def crash_in_the_second_student(config, idx_dir, tmp_path):
    """Runs ``config`` with two-epoch lenet5_half students and lenet5 first students until a
    simulated crash in the second student; returns (eval set, cache path, workdir, teacher)."""
    from kd_keras.teachers.cache import AnswerCache
    from test_distill import _Crash

    config.student.model, config.unpaid.model, config.student.epochs = "lenet5_half", "teacher", 2
    eval_set = data.load("fashion_mnist:test[:200]", (28, 28, 1), data_dir=idx_dir, compact=True)
    cache, workdir = str(tmp_path / "cache.sqlite"), tmp_path / "w"
    first = Teacher(CallableBackend(toy_teacher), 10, cache=AnswerCache(cache))
    with pytest.raises(RuntimeError, match="simulated crash"):
        fsbbt(config, first, _unlabeled(idx_dir), eval_set, str(workdir), callbacks=[_Crash()])
    return eval_set, cache, workdir, first


def test_a_resumed_run_trains_no_first_student_again(idx_dir, tmp_path, monkeypatch, capsys):
    """The first students' answers are kept as each is given: a run stopped in the second
    student's training resumes without training a first student again or paying again, and
    a resume with other unpaid settings is refused before any answer."""
    from kd_keras import models
    from kd_keras.teachers.cache import AnswerCache
    from test_distill import _Epochs

    config = _config(idx_dir, count=200)
    config.unpaid.students = 2
    eval_set, cache, workdir, first = crash_in_the_second_student(config, idx_dir, tmp_path)
    assert sorted(p.name for p in (workdir / "unpaid_labellers").iterdir()) == [
        "0.npz", "0.weights.h5", "1.npz", "1.weights.h5"]
    kept = np.load(workdir / "unpaid_labellers" / "0.npz")
    assert kept["unpaid"].shape == (200, 10) and kept["eval"].shape == (200, 10)

    built, real_build = [], models.build
    monkeypatch.setattr(models, "build", lambda name, *a: built.append(name) or real_build(name, *a))
    second = Teacher(CallableBackend(toy_teacher), 10, cache=AnswerCache(cache))
    capsys.readouterr()
    epochs = _Epochs()
    result = fsbbt(config, second, _unlabeled(idx_dir), eval_set, str(workdir), resume=True,
                   callbacks=[epochs])
    assert "lenet5" not in built  # no first student trained again
    assert epochs.seen == [1]  # the second student continued from its checkpoint
    assert second.stats.sent == 0 and result.report["teacher_queries"] == 300
    out = capsys.readouterr().out
    assert "unpaid: first student 1's answers read from" in out
    assert "unpaid: first student 2's answers read from" in out
    assert len(result.report["unpaid_labellers"]["each"]) == 2
    other_eval = data.load("fashion_mnist:test[:100]", (28, 28, 1), data_dir=idx_dir,
                           compact=True)  # kept answers score no other eval set
    again = fsbbt(config, second, _unlabeled(idx_dir), other_eval, str(workdir), resume=True)
    assert "lenet5" not in built and "unpaid_labellers" not in again.report

    config.unpaid.count = 100
    paid = Teacher(CallableBackend(lambda x: pytest.fail("paid")), 10, cache=AnswerCache(cache))
    with pytest.raises(ConfigError, match="unpaid.count: 200 -> 100"):
        fsbbt(config, paid, _unlabeled(idx_dir), eval_set, str(workdir), resume=True)


def test_a_run_begun_before_a_setting_existed_resumes_while_it_holds_its_default():
    """Manifests of runs begun before the unpaid and primer settings were checked lack
    them: while they hold their defaults (what such a run did), a resume goes on."""
    from kd_keras.distill.resume import changed_settings, saved_value

    saved = {"seed": 0, "student.model": "lenet5_half"}
    current = {**saved, "unpaid.count": 0, "unpaid.model": "", "primer.weight": 0.0}
    assert changed_settings(saved, current) == []
    assert changed_settings(saved, {**current, "unpaid.count": 40000}) == ["unpaid.count"]
    assert changed_settings({**current, "unpaid.count": 0},
                            {**current, "unpaid.count": 40000}) == ["unpaid.count"]
    assert changed_settings(current, saved) == ["primer.weight", "unpaid.count", "unpaid.model"]
    assert changed_settings(saved, {**current, "seed": 1}) == ["seed"]
    # the unpaid labellers' defaults changed later: such a run labelled no unpaid image
    assert changed_settings(saved, {**current, "unpaid.students": 1}) == []
    assert changed_settings(saved, {**current, "unpaid.count": 20000, "unpaid.students": 3}) \
        == ["unpaid.count", "unpaid.students"]
    # first students trained as the student (0) before the setting existed; -1 since
    assert changed_settings(saved, {**current, "unpaid.epochs": 0}) == []
    assert changed_settings(saved, {**current, "unpaid.epochs": -1}) == ["unpaid.epochs"]
    assert saved_value(saved, "unpaid.epochs") == "0 (begun before the setting)"
    assert saved_value(saved, "seed") == "0" and saved_value(saved, "primer.weight") == "unset"


def test_unpaid_epochs_is_in_the_manifest_only_where_it_acts(idx_dir):
    """A run without first students of another model records unpaid.epochs as 0, what a run
    begun before the setting did, so such runs resume under today's default (-1)."""
    from kd_keras.distill.resume import changed_settings, manifest

    teacher = Teacher(CallableBackend(toy_teacher), 10)
    config = _config(idx_dir)  # the student's own first students
    config.unpaid.epochs = -1
    assert manifest(config, _unlabeled(idx_dir), teacher)["unpaid.epochs"] == 0
    config.unpaid.count = 0
    before = manifest(config, _unlabeled(idx_dir), teacher)
    assert before["unpaid.epochs"] == 0
    del before["unpaid.epochs"]  # a manifest written before the setting existed
    assert "unpaid.epochs" not in changed_settings(before, manifest(config, _unlabeled(idx_dir),
                                                                    teacher))
    config.unpaid.count, config.unpaid.model = 400, "teacher"
    assert manifest(config, _unlabeled(idx_dir), teacher)["unpaid.epochs"] == -1


def test_by_default_three_teacher_sized_first_students_label_four_times_the_budget(
        idx_dir, tmp_path, capsys):
    """unpaid.count = -1 (the default): unpaid.factor = 4 x the paid answers planned,
    labelled by three first students of the config's teacher.model (lenet5 for a lenet5_half
    student), their answers averaged; the teacher is paid for the budget only, and no first
    student of the student's own model is trained."""
    from kd_keras import models
    from kd_keras.config import SETTINGS

    sent = []

    def teacher_fn(x):
        sent.append(len(x))
        return toy_teacher(x)

    defaults = {s.field: s.default for s in SETTINGS}
    assert [defaults[f"unpaid.{k}"] for k in ("count", "factor", "students", "model")] == [
        -1, 4.0, 3, "teacher"]
    config = _config(idx_dir, count=-1)
    for key in ("factor", "students", "model"):
        config.unpaid[key] = defaults[f"unpaid.{key}"]
    config.query.budget = 260
    assert tiny_config(idx_dir).unpaid.count == 0
    result = fsbbt(config, Teacher(CallableBackend(teacher_fn), 10), _unlabeled(idx_dir), None,
                   str(tmp_path / "w"))
    report = result.report
    assert report["n_unpaid"] == 1040 and report["teacher_queries"] == sum(sent) == 260
    assert "4 x 260 paid answers = 1040 unpaid images, labelled by 3 first students of lenet5" \
        in capsys.readouterr().out
    kept = tmp_path / "w" / "unpaid_labellers"
    assert sorted(p.name for p in kept.iterdir()) == [f"{k}.{ext}" for k in range(3)
                                                      for ext in ("npz", "weights.h5")]
    for k in range(3):
        labeller = models.build("lenet5", (28, 28, 1), 10)
        labeller.load_weights(kept / f"{k}.weights.h5")  # LeNet-5s, not LeNet-5-Half
        assert labeller.count_params() > 2 * result.student.count_params()
    assert "student_train" not in report["stage_seconds"]  # no first student of its own


def test_the_default_unpaid_count_is_off_where_unpaid_images_cannot_be_used(idx_dir):
    """Targets that are not the teacher's: -1 resolves to 0 (explicit counts there are
    refused, above); the paper's method and the quick variant use none. Several workers use
    them too (tests/test_multiworker.py)."""
    from kd_keras.config import make_paper, make_quick
    from kd_keras.distill.unpaid import resolve

    config = _config(idx_dir, count=-1)
    assert resolve(config, 100).unpaid.count == 4 * (100 + 200)  # no budget: 4 x (N + M)
    config.synthesis.sources = "real"
    assert resolve(config, 100).unpaid.count == 4 * 100  # no synthetic images: 4 x N
    config.query.budget = 1000
    assert resolve(config, 100).unpaid.count == 4000 and config.unpaid.count == -1
    config.unpaid.factor = 1.5  # unpaid images per paid answer
    assert resolve(config, 100).unpaid.count == 1500
    config.student.targets = "true_labels"
    assert resolve(config, 100).unpaid.count == 0
    config.unpaid.count = 40000
    with pytest.raises(ConfigError, match="needs student.targets=teacher"):
        resolve(config, 100)  # a count the user set is checked, not changed
    config.student.targets = "teacher"
    assert resolve(config, 100) is config
    for variant in (make_paper, make_quick):
        assert variant(_config(idx_dir, count=-1)).unpaid.count == 0


def _student_clone_model_cannot_copy():
    """A functional student with a custom layer built from a function and no get_config."""
    import keras

    class Apply(keras.layers.Layer):
        def __init__(self, fn):
            super().__init__()
            self.fn = fn

        def call(self, x):
            return self.fn(x)

    inputs = keras.Input((28, 28, 1))
    h = keras.layers.Flatten()(Apply(lambda x: 2.0 * x)(inputs))
    return keras.Model(inputs, keras.layers.Dense(10)(h))


def test_a_student_that_cannot_be_copied_is_found_before_any_answer(idx_dir, tmp_path, monkeypatch):
    """Several first students of the student's own model are fresh copies of a user's
    student: one clone_model cannot copy turns unpaid.count=-1 off (one line says why) and
    refuses an explicit count before the first answer, not after the first student's
    training; first students of another model (the default's) need no copy; a subclassed
    student (no fixed input, so no export) is refused then too."""
    import keras

    student = _student_clone_model_cannot_copy()
    with pytest.raises(NotImplementedError):
        keras.models.clone_model(student)
    paid = Teacher(CallableBackend(lambda x: pytest.fail("a paid answer")), 10)
    config = _config(idx_dir, count=400)
    config.unpaid.students = 3
    with pytest.raises(ConfigError, match="clone_model cannot copy it"):
        fsbbt(config, paid, _unlabeled(idx_dir), None, str(tmp_path / "w"), student=student)
    from kd_keras.distill.unpaid import copyable, resolve

    config.unpaid.count = -1
    assert resolve(config, 100, student=student).unpaid.count == 0
    copy = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(10)])
    assert resolve(config, 100, student=copy).unpaid.count == 4 * (100 + 200)
    clones = []  # preflight tries the copy once (a large student is not cloned twice)
    clone_model = keras.models.clone_model
    monkeypatch.setattr(keras.models, "clone_model", lambda m: clones.append(m) or clone_model(m))
    from kd_keras.distill.preflight import preflight

    assert preflight(config, paid, _unlabeled(idx_dir), None, str(tmp_path / "w3"),
                     student=copy).config.unpaid.count == 4 * (100 + 200)
    assert clones == [copy]
    config.unpaid.model = "teacher"  # the default: first students of teacher.model
    assert copyable(config, student) and resolve(config, 100, student=student).unpaid.count
    config.unpaid.students, config.unpaid.model = 1, ""  # the first student itself labels
    assert copyable(config, student)

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.out = keras.layers.Dense(10)

        def call(self, x):
            return self.out(keras.ops.reshape(x, (-1, 784)))

    subclassed = Subclassed()
    subclassed(np.zeros((1, 28, 28, 1), np.float32))
    with pytest.raises(ConfigError, match="no fixed input and output"):
        fsbbt(_config(idx_dir, count=0), paid, _unlabeled(idx_dir), None, str(tmp_path / "s"),
              student=subclassed)


def test_a_second_round_of_first_students_learns_from_the_first_rounds_answers(
        idx_dir, tmp_path, monkeypatch):
    """unpaid.rounds = 2: the second round's first students learn from the paid set plus the
    first round's answers to the unpaid images, and their averaged answers are what the
    student learns from; all are kept, so a resume trains none of them again."""
    from kd_keras.distill import unpaid

    teacher = Teacher(CallableBackend(toy_teacher), 10)
    config = _config(idx_dir, count=200)
    config.student.model, config.unpaid.model = "lenet5_half", "teacher"
    config.unpaid.students, config.unpaid.rounds = 2, 2
    eval_set = data.load("fashion_mnist:test[:200]", (28, 28, 1), data_dir=idx_dir, compact=True)
    trained, real_train = [], unpaid.train_student
    monkeypatch.setattr(unpaid, "train_student", lambda ctx, labelled, **kw: trained.append(
        (len(labelled), kw["seed"])) or real_train(ctx, labelled, **kw))
    parts, real_part = [], unpaid.unpaid_part
    monkeypatch.setattr(unpaid, "unpaid_part", lambda *a: parts.append(real_part(*a)) or parts[-1])
    workdir = tmp_path / "w"
    result = fsbbt(config, teacher, _unlabeled(idx_dir), eval_set, str(workdir))
    assert [n for n, _ in trained] == [300, 300, 500, 500]  # round 2: paid + round 1's answers
    assert len({seed for _, seed in trained}) == 4  # four first students, four seeds
    kept = [np.load(workdir / "unpaid_labellers" / f"{k}.npz")["unpaid"] for k in range(4)]
    targets = parts[0].targets
    np.testing.assert_allclose(targets, (kept[2] + kept[3]) / 2, atol=1e-5)
    assert np.abs(targets - (kept[0] + kept[1]) / 2).max() > 1e-3  # not round 1's answers
    rounds = result.report["unpaid_labellers_by_round"]
    assert len(rounds) == 2 and result.report["unpaid_labellers"] == rounds[1]
    assert result.report["teacher_queries"] == 300  # no round bought an answer
    trained.clear()
    again = fsbbt(config, teacher, _unlabeled(idx_dir), eval_set, str(workdir), resume=True)
    assert trained == [] and again.report["unpaid_labellers"] == rounds[1]
