"""Learning from images nobody paid for (issue #26): self-training on unpaid candidates.
On by default (``unpaid.count=-1``, :func:`resolve`): four times the paid answers of unpaid
CutMix images, labelled by the averaged answers of three first students of the config's
``teacher.model`` (twice the student's width in every shipped config; measured on three data
sets, docs/RESULTS.md).

A first student is distilled on the paid set as usual. It then answers ``unpaid.count``
new candidates of a recipe generator (CutMix, MixUp or warps of the real images, kept as
their recipe: no pixels stored), and a second, fresh student is distilled on the paid answers
plus the first student's answers to the unpaid images (self-training, as in Noisy Student
and born-again networks). Candidates the first student is less sure of than
``unpaid.min_confidence`` are left out. With ``unpaid.students`` = k > 1, k - 1 more first
students of other seeds are distilled on the same paid set and the unpaid images get the
average of the k students' answers (an ensemble is usually right more often than its
members); they keep no checkpoints, but their answers are kept (below).
``unpaid.model`` makes the first students another model than the student, e.g. the
config's ``teacher.model`` (``teacher``): the student never sees it, only the labels it
gives, and the first student of the student's own model is then not trained at all (unless
a primer needs it); ``unpaid.epochs`` then sets their epochs (-1, the default: about
``student.min_steps`` steps, fewer than the student's 50 on a large paid set; time, not
answers). With eval labels at hand, the report gives each first student's accuracy and
their ensemble's (``unpaid_labellers``). ``unpaid.paid_repeat`` = k shows the second student
every paid image k times an epoch, weighing the teacher's answers above the first students'.
Not one more teacher answer is bought: the teacher never sees an unpaid image. What it is
worth is measured (docs/RESULTS.md), not assumed. On several workers every worker trains
the first students together (they are trained under the run's strategy) and all take the
chief's answers to the unpaid images, so each trains the second student on the same set.

With ``unpaid.fresh`` > 0 the first students also answer, in the second student's train
step, new mixes of each of its batches (:func:`kd_keras.distill.augment.fresh_mixes`): new
images every step, each answered on the very pixels the student sees (consistent teaching).
On Fashion-MNIST at 10,000 answers it gave no gain (docs/EXPLORATIONS.md). With
``unpaid.hint`` > 0 the first of them also gives the second student a feature hint
(:mod:`kd_keras.distill.hint`).

Each first student's answers (to the unpaid images and, for its score, to the eval set) and
weights are kept in ``WORKDIR/unpaid_labellers/`` as soon as it has given them (on several workers
read back only when every worker kept them), so a ``--resume`` trains no first student of
another model again (``unpaid.model``; with a 4x-larger labeller on
CIFAR-10 (JPEG) each is about half an hour here); the settings they depend on (this section
among them) are checked on ``--resume``. The second student has checkpoints of its own
(``checkpoints_student_unpaid``) and is continued. A user's own Keras model (the API's
``student=``) is trained further on the larger set rather than afresh (once, on the larger
set, when another model labels).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

import keras
import numpy as np

from kd_keras import synthesis
from kd_keras.context import RunContext
from kd_keras.distill import hint
from kd_keras.distill.evaluation import EpochProgress, accuracy, predict_logits
from kd_keras.distill.losses import loss_takes
from kd_keras.distill.plan import has_generators
from kd_keras.distill.primer import soft_predictions
from kd_keras.distill.store import LabelledSet, Part
from kd_keras.distill.student import AUTO_EPOCHS, new_student, planned_epochs, train_student
from kd_keras.errors import ConfigError
from kd_keras.strategy import all_workers, from_chief

GENERATORS = ("cutmix", "mixup", "warp")  # recipe generators: unpaid images cost no storage
FRESH_GENERATORS = ("cutmix", "mixup")  # those unpaid.fresh can make in a batch
PART = "unpaid"
LABELLERS = "unpaid_labellers"  # WORKDIR/unpaid_labellers/K.npz: first student K's answers
SEED_OFFSET = 7919  # unpaid candidates are drawn apart from the paid ones
AUTO = -1  # unpaid.count's default: unpaid.factor x the paid answers (:func:`resolve`)


def resolve(config, n_real: int, student: Optional[keras.Model] = None):
    """The config with ``unpaid.count`` = -1 (the default) resolved: ``unpaid.factor`` x the
    paid answers planned (``query.budget``, or the N + M images without one) where unpaid
    images can be used, else 0 (targets other than the teacher's; a user's ``student`` the
    other first students cannot be copies of, :func:`copyable`). Measured on three data sets
    (docs/RESULTS.md). A count the user set is checked instead (:func:`check`). Returns a new
    config when it changes one; call after the budget is planned, before any answer is
    bought."""
    if int(config.unpaid.count) != AUTO:
        check(config, student)  # a count the user set: refused where it cannot be used
        return config
    why = ("student.targets is not teacher" if config.student.targets != "teacher"
           else "keras.models.clone_model cannot copy the student" if not copyable(config, student)
           else "")
    paid = int(config.query.budget) or n_real + (
        int(config.synthesis.num_synthetic) if has_generators(config) else 0)
    resolved = config.copy_and_resolve_references()
    with resolved.unlocked():
        resolved.unpaid.count = 0 if why else int(round(float(config.unpaid.factor) * paid))
    check_fresh(resolved, why)
    hint.check(resolved, student, why)
    check_labellers(resolved)
    k, model = int(config.unpaid.students), labeller_model(config) or "the student's model"
    print("unpaid: unpaid.count=-1: " + (f"none ({why})" if why else
          f"{float(config.unpaid.factor):g} x {paid} paid answers = {resolved.unpaid.count} "
          f"unpaid images, labelled by {k} first student{'s' * (k > 1)} of {model}"), flush=True)
    return resolved


def copyable(config, student: Optional[keras.Model]) -> bool:
    """False when the first students beyond the first would be fresh copies of a user's
    ``student`` (the API's) that ``keras.models.clone_model`` cannot make, e.g. a subclassed
    model without ``get_config``: found now rather than after the first student's training."""
    if student is None or int(config.unpaid.students) < 2 or config.unpaid.model:
        return True
    try:
        keras.models.clone_model(student)
    except (NotImplementedError, TypeError, ValueError):
        return False
    return True


def check(config, student: Optional[keras.Model] = None) -> None:
    """Raises ConfigError before any answer is bought when unpaid images cannot be used."""
    check_fresh(config)
    hint.check(config, student)
    check_labellers(config)
    if not config.unpaid.count:
        return
    if config.student.targets != "teacher":
        raise ConfigError("unpaid.count > 0 needs student.targets=teacher")
    if not copyable(config, student):
        raise ConfigError(f"unpaid.students={config.unpaid.students} trains fresh copies of your "
                          "student and keras.models.clone_model cannot copy it (give it a "
                          "get_config), or set unpaid.students=1, unpaid.model or "
                          "unpaid.count=0")


def check_fresh(config, why: str = "unpaid.count=0") -> None:
    """Raises ConfigError when ``unpaid.fresh`` is asked for but cannot be made: it needs the
    first students (unpaid images) and a generator that mixes in a batch."""
    fresh = float(config.unpaid.fresh)
    if fresh and not config.unpaid.count:
        raise ConfigError(f"unpaid.fresh={fresh:g} needs the first students of unpaid images, "
                          f"but there are none ({why}); set unpaid.fresh=0")
    if fresh and config.unpaid.generator not in FRESH_GENERATORS:
        raise ConfigError(f"unpaid.fresh mixes images in a batch: unpaid.generator must be one "
                          f"of {', '.join(FRESH_GENERATORS)}, not {config.unpaid.generator!r}")


def check_labellers(config) -> None:
    """Raises ConfigError when a first-student setting is set but cannot act:
    ``unpaid.paid_repeat`` without unpaid images; ``unpaid.temperature`` with a loss that
    takes none; it or a positive ``unpaid.epochs`` with first students of the student's own
    model, since the first of them is the run's first distilled student, trained as the
    student."""
    c = config.unpaid
    if not c.count:  # no first students: nothing they would act on
        if int(c.paid_repeat) > 1:
            raise ConfigError(f"unpaid.paid_repeat={int(c.paid_repeat)} repeats the paid images "
                              "beside unpaid ones, but there are none (unpaid.count resolves "
                              "to 0); set unpaid.paid_repeat=1")
        return
    t = float(c.temperature)
    if t and not loss_takes(config.student.loss, "temperature"):
        raise ConfigError(f"unpaid.temperature={t:g} needs a loss with a temperature "
                          f"(student.loss=kl), not {config.student.loss!r}; set "
                          "unpaid.temperature=0")
    for key in ("temperature", "epochs"):  # epochs=-1 (the default) asks for nothing there
        if float(c[key]) > 0 and not c.model:
            raise ConfigError(f"unpaid.{key}={float(c[key]):g} needs first students of another "
                              "model (unpaid.model=teacher or a registered model): the "
                              "student's own first student is the run's first distilled "
                              f"student, trained as the student; or set unpaid.{key}=0")


def labeller_seed(config, index: int) -> int:
    """The seed of first student ``index`` (= round x ``unpaid.students`` + k): its initial
    weights and the order it sees the images in."""
    return int(config.seed) + index * SEED_OFFSET


def first_students(config) -> list[tuple[str, int]]:
    """(registered model, seed) of every first student a run with ``config`` trains (none
    without unpaid images): e.g. for a benchmark to check that none starts from the very
    weights its own teacher started from."""
    c = config.unpaid
    if not int(c.count) or config.student.targets != "teacher":
        return []
    model = labeller_model(config) or str(config.student.model)
    return [(model, labeller_seed(config, i)) for i in range(int(c.students) * int(c.rounds))]


def labeller_epochs(config, n_paid: int) -> int:
    """The epochs a first student trains on the ``n_paid`` images of the paid set:
    ``unpaid.epochs``; 0 the student's own plan for them; -1 (the default) that plan without
    its floor of 50 epochs, i.e. about ``student.min_steps`` steps however large the set (21
    epochs at 50,000 answers: as accurate a student, in less time; BUILD.md), for first
    students of another model only: the student's own train as the first of them did."""
    epochs = int(config.unpaid.epochs)
    if epochs > 0:
        return epochs
    least = 1 if epochs == -1 and config.unpaid.model else AUTO_EPOCHS[0]
    return planned_epochs(config.student, n_paid, least=least)


def labeller_temperature(config) -> float:
    """The KL temperature the first students learn at: ``unpaid.temperature``, 0 meaning
    ``student.temperature``."""
    return float(config.unpaid.temperature or config.student.temperature)


def unpaid_part(ctx: RunContext, first: Optional[keras.Model],
                batch_size: int = 512) -> Optional[Part]:
    """``unpaid.count`` candidates answered by ``first`` (a trained student, logits; None
    when ``unpaid.model`` names the first students' model) and the other first students,
    those they are at least ``unpaid.min_confidence`` sure of; None when unpaid.count is 0.
    With ``unpaid.rounds`` = r > 1 the candidates are answered r times: each round's first
    students learn from the paid set plus the previous round's answers (Noisy Student's
    iterations), and the last round's answers are the ones the student learns from."""
    c = ctx.config.unpaid
    if not c.count:
        return None
    generator = synthesis.build(c.generator, ctx.config)
    generator.prepare(ctx, ctx.real, ctx.real_probs)
    candidates = generator.candidates(int(c.count), seed=int(ctx.config.seed) + SEED_OFFSET)
    kept = Kept(ctx)
    labelled, rounds = ctx.labelled, []
    # the second student's fresh mixes are answered, and its hint read, by the last round's
    # first students
    ctx.labellers = [] if float(c.fresh) > 0 or float(c.hint) > 0 else None
    with ctx.stage("unpaid_labellers"):  # the first students trained here and their answers
        for r in range(int(c.rounds)):
            probs, scores = answer_round(ctx, r, labelled, candidates, first, kept, batch_size)
            rounds.append(scores.report(f"round {r + 1}: " if int(c.rounds) > 1 else ""))
            keep = np.flatnonzero(probs.max(axis=1) >= float(c.min_confidence))
            part = Part(candidates.subset(keep), probs[keep], generator=c.generator)
            labelled = ctx.labelled.with_part(PART, part)  # what the next round learns from
    if rounds[-1]:
        ctx.findings.update({"unpaid_labellers": rounds[-1]})
        if len(rounds) > 1:
            ctx.findings.update({"unpaid_labellers_by_round": rounds})
    who = "the first student" if c.students == 1 else f"{c.students} first students"
    print(f"unpaid: {who} answered {len(candidates)} unpaid {c.generator} images; "
          f"kept {len(keep)} answered with at least {c.min_confidence:g} confidence (no teacher "
          "answers)",
          flush=True)
    return part


def answer_round(ctx: RunContext, r: int, labelled: LabelledSet, candidates,
                 first: Optional[keras.Model], kept: "Kept", batch_size: int):
    """Round ``r``'s first students, trained on ``labelled`` (or read back from ``kept``), and
    their averaged answers to the candidates (as the chief has them) with their eval
    :class:`Scores`. Round 0's first student of the student's own model is ``first``."""
    c = ctx.config.unpaid
    model = labeller_model(ctx.config)
    probs, scores = 0.0, Scores(ctx.eval_set)
    # the second student's fresh mixes and hint need the last round's first students themselves
    fresh = ctx.labellers is not None and r == int(c.rounds) - 1
    for k in range(int(c.students)):  # averaged
        index = r * int(c.students) + k  # kept as WORKDIR/unpaid_labellers/INDEX.npz
        answers = kept.load(index, len(candidates), scores.labels)
        trained = first if index == 0 and not model else None  # this run's own
        labeller = trained
        if fresh and answers is not None and labeller is None:
            labeller = kept.load_model(index, lambda: new_labeller(ctx, model))
            answers = answers if labeller is not None else None
        if not all_workers(ctx.strategy, answers is not None):
            # trained again on every worker: they train it together (a worker that
            # kept its weights trains too, or the others would wait for it)
            answers, labeller = None, trained
        if answers is None:
            what = f"first student {k + 1}/{c.students}" + (
                f" of round {r + 1}/{c.rounds}" if int(c.rounds) > 1 else "")
            epochs = labeller_epochs(ctx.config, len(labelled))
            labeller = labeller if labeller is not None else train_student(
                ctx, labelled, verbose=0, seed=labeller_seed(ctx.config, index),
                model=model, temperature=labeller_temperature(ctx.config), epochs=epochs,
                callbacks=[EpochProgress(f"unpaid: {what}", epochs)])
            answers = {"unpaid": soft_predictions(labeller, candidates, 1.0, batch_size),
                       "eval": scores.predict(labeller), "eval_labels": scores.labels}
            kept.save(index, answers, labeller)
        if fresh:
            ctx.labellers.append(frozen_copy(ctx, labeller, model) if labeller is first
                                 else labeller)
        probs = probs + answers["unpaid"]
        scores.add(answers["eval"])
    probs = from_chief(ctx.strategy, np.asarray(probs / float(c.students), np.float32))
    return probs, scores


def new_labeller(ctx: RunContext, model: str) -> keras.Model:
    """An untrained first student of the registered ``model`` ("" the student's own), built
    under the run's strategy."""
    with ctx.strategy.scope():
        return new_student(ctx, model)


def frozen_copy(ctx: RunContext, first: keras.Model, model: str) -> keras.Model:
    """A copy of the first student that labels fresh mixes: a user's Keras student goes on
    training as the second student, and its first answers must not move with it."""
    copy = new_labeller(ctx, model)
    copy.set_weights(first.get_weights())
    return copy


def labeller_model(config) -> str:
    """The first students' registered model: ``unpaid.model``, ``teacher.model`` for
    ``teacher``, or "" (the student's own)."""
    return str(config.teacher.model if config.unpaid.model == "teacher" else config.unpaid.model)


class Kept:
    """The first students' answers in ``WORKDIR/unpaid_labellers/K.npz``, written as each is
    given (into a new file, then renamed) and read back on ``--resume``: a first student
    costs no answer but minutes to hours of training."""

    def __init__(self, ctx: RunContext):
        self.resume = bool(ctx.resume)
        if not self.resume:
            ctx.workdir.remove(LABELLERS)  # only ever one a kd_keras run made
        self.folder = ctx.workdir.claim(LABELLERS)

    def path(self, k: int) -> str:
        return os.path.join(self.folder, f"{k}.npz")

    def load(self, k: int, count: int, eval_labels: Optional[np.ndarray]) -> Optional[dict]:
        """First student ``k``'s answers if a resumed run has them for ``count`` unpaid
        images; its eval answers only if given for ``eval_labels`` (the eval set, not part
        of what a resume checks, may differ)."""
        if not self.resume or not os.path.exists(self.path(k)):
            return None
        with np.load(self.path(k)) as f:
            answers = {"unpaid": f["unpaid"], "eval": None}
            if "eval" in f and eval_labels is not None and \
                    np.array_equal(f["eval_labels"], eval_labels):
                answers["eval"] = f["eval"]
        if len(answers["unpaid"]) != count:
            return None
        print(f"unpaid: first student {k + 1}'s answers read from {self.path(k)} (--resume)",
              flush=True)
        return answers

    def weights_path(self, k: int) -> str:
        return os.path.join(self.folder, f"{k}.weights.h5")

    def save(self, k: int, answers: dict, labeller: keras.Model) -> None:
        """First student ``k``'s answers and weights (the weights first: answers without
        them are read back only where the weights are not needed)."""
        os.makedirs(self.folder, exist_ok=True)
        tmp = os.path.join(self.folder, f"{k}.part.weights.h5")
        labeller.save_weights(tmp)
        os.replace(tmp, self.weights_path(k))
        arrays = {key: value for key, value in answers.items() if value is not None}
        tmp = self.path(k) + ".part.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, self.path(k))

    def load_model(self, k: int, build) -> Optional[keras.Model]:
        """First student ``k`` as kept (``build()`` makes the untrained model), or None when
        its weights were not kept or do not fit that model (it is then trained again)."""
        if not os.path.exists(self.weights_path(k)):
            return None
        labeller = build()
        try:
            labeller.load_weights(self.weights_path(k))
        except (ValueError, KeyError) as e:
            print(f"unpaid: first student {k + 1}'s kept weights do not fit ({e}); training it "
                  "again", flush=True)
            return None
        return labeller


class Scores:
    """The first students' accuracy on the eval set, alone and averaged (no answers bought:
    the eval labels are the user's); nothing when the eval set has no labels."""

    def __init__(self, eval_set):
        self.eval_set = eval_set if eval_set is not None and eval_set.labels is not None \
            else None
        self.labels = None if self.eval_set is None else self.eval_set.labels
        self.each, self.total, self.complete = [], 0.0, True

    def predict(self, model: keras.Model) -> Optional[np.ndarray]:
        """``model``'s probabilities on the eval set (None without eval labels)."""
        if self.eval_set is None:
            return None
        return keras.ops.convert_to_numpy(keras.ops.softmax(
            predict_logits(model, self.eval_set.images)))

    def add(self, probs: Optional[np.ndarray]) -> None:
        """Counts one first student's eval answers (None: not at hand, e.g. kept by a run
        with another eval set; the scores are then left out of the report)."""
        if probs is None:
            self.complete = False
            return
        self.each.append(accuracy(probs, self.eval_set.labels))
        self.total = self.total + probs

    def report(self, prefix: str = "") -> dict:
        """Each first student's eval accuracy and their averaged answers' ({} when not all
        are at hand)."""
        if not self.each or not self.complete:
            return {}
        ensemble = accuracy(self.total, self.eval_set.labels)
        print(f"unpaid: {prefix}first students on the eval set "
              f"{', '.join(f'{a:.4f}' for a in self.each)}; averaged {ensemble:.4f}", flush=True)
        return {"each": self.each, "averaged": ensemble}


def with_unpaid(ctx: RunContext, first: Optional[keras.Model]) -> Optional[LabelledSet]:
    """The paid set, its parts ``unpaid.paid_repeat`` times as often in an epoch, plus
    :func:`unpaid_part`; None when unpaid.count is 0."""
    part = unpaid_part(ctx, first)
    if part is None:
        return None
    k = int(ctx.config.unpaid.paid_repeat)
    paid = {name: dataclasses.replace(p, repeat=p.repeat * k)
            for name, p in ctx.labelled.parts.items()}
    return LabelledSet(paid, ctx.labelled.agreement).with_part(PART, part)


__all__ = ["AUTO", "GENERATORS", "LABELLERS", "check", "first_students", "labeller_model",
           "labeller_seed", "resolve", "unpaid_part", "with_unpaid"]
