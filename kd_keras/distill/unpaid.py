"""Learning from images nobody paid for (issue #26): self-training on unpaid candidates.

A first student is distilled on the paid set as usual. It then answers ``unpaid.count``
new candidates of a recipe generator (CutMix, MixUp or warps of the real images, kept as
their recipe: no pixels stored), and a second, fresh student is distilled on the paid answers
plus the first student's answers to the unpaid images (self-training, as in Noisy Student
and born-again networks). Candidates the first student is less sure of than
``unpaid.min_confidence`` are left out. With ``unpaid.students`` = k > 1, k - 1 more first
students of other seeds are distilled on the same paid set and the unpaid images get the
average of the k students' answers (an ensemble is usually right more often than its
members); they keep no checkpoints, so a ``--resume`` trains them again from the cache.
``unpaid.model`` makes the first students another model than the student, e.g. the
config's ``teacher.model`` (``teacher``): the student never sees it, only the labels it
gives, and the first student of the student's own model is then not trained at all (unless
a primer needs it). With eval labels at hand, the report gives each first student's accuracy
and their ensemble's (``unpaid_labellers``).
Not one more teacher answer is bought: the teacher never sees an unpaid image. What it is
worth is measured (docs/RESULTS.md), not assumed.

The second student has checkpoints of its own (``checkpoints_student_unpaid``); a
``--resume`` after a stop in its training trains the first students again (their answers
all come from the cache) and continues the second. A user's own Keras model (the API's
``student=``) is trained further on the larger set rather than afresh (once, on the larger
set, when another model labels).
"""

from __future__ import annotations

from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from kd_keras import synthesis
from kd_keras.context import RunContext
from kd_keras.distill.evaluation import EpochProgress, accuracy, predict_logits
from kd_keras.distill.primer import soft_predictions
from kd_keras.distill.store import LabelledSet, Part
from kd_keras.distill.student import planned_epochs, train_student
from kd_keras.errors import ConfigError

GENERATORS = ("cutmix", "mixup", "warp")  # recipe generators: unpaid images cost no storage
PART = "unpaid"
SEED_OFFSET = 7919  # unpaid candidates are drawn apart from the paid ones


def check(config, shared_dir: str = "", strategy=None) -> None:
    """Raises ConfigError before any answer is bought when unpaid images cannot be used
    (not yet on several workers: each would have to keep exactly the same unpaid images)."""
    if not config.unpaid.count:
        return
    if shared_dir or isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        raise ConfigError("unpaid.count > 0 is not yet supported with --shared_dir or "
                          "--strategy=multi_worker; set --config.unpaid.count=0")
    if config.student.targets != "teacher":
        raise ConfigError("unpaid.count > 0 needs student.targets=teacher")


def unpaid_part(ctx: RunContext, first: Optional[keras.Model],
                batch_size: int = 512) -> Optional[Part]:
    """``unpaid.count`` candidates answered by ``first`` (a trained student, logits; None
    when ``unpaid.model`` names the first students' model) and the other first students,
    those they are at least ``unpaid.min_confidence`` sure of; None when unpaid.count is 0."""
    c = ctx.config.unpaid
    if not c.count:
        return None
    generator = synthesis.build(c.generator, ctx.config)
    generator.prepare(ctx, ctx.real, ctx.real_probs)
    candidates = generator.candidates(int(c.count), seed=int(ctx.config.seed) + SEED_OFFSET)
    model = str(ctx.config.teacher.model if c.model == "teacher" else c.model)
    probs, scores = 0.0, Scores(ctx.eval_set)
    with ctx.stage("unpaid_labellers"):  # the first students trained here and their answers
        for k in range(int(c.students)):  # averaged
            labeller = first if k == 0 and not model else train_student(
                ctx, ctx.labelled, verbose=0, seed=int(ctx.config.seed) + k * SEED_OFFSET,
                model=model, callbacks=[EpochProgress(
                    f"unpaid: first student {k + 1}/{c.students}",
                    planned_epochs(ctx.config.student, len(ctx.labelled)))])
            probs = probs + soft_predictions(labeller, candidates, 1.0, batch_size)
            scores.add(labeller)
    probs /= float(c.students)
    ctx.findings.update(scores.report())
    keep = np.flatnonzero(probs.max(axis=1) >= float(c.min_confidence))
    who = "the first student" if c.students == 1 else f"{c.students} first students"
    print(f"unpaid: {who} answered {len(candidates)} unpaid {c.generator} images; "
          f"kept {len(keep)} answered with at least {c.min_confidence:g} confidence (no teacher "
          "answers)",
          flush=True)
    return Part(candidates.subset(keep), probs[keep], generator=c.generator)


class Scores:
    """The first students' accuracy on the eval set, alone and averaged (no answers bought:
    the eval labels are the user's); nothing when the eval set has no labels."""

    def __init__(self, eval_set):
        self.eval_set = eval_set if eval_set is not None and eval_set.labels is not None \
            else None
        self.each, self.total = [], 0.0

    def add(self, model: keras.Model) -> None:
        if self.eval_set is None:
            return
        probs = keras.ops.convert_to_numpy(keras.ops.softmax(
            predict_logits(model, self.eval_set.images)))
        self.each.append(accuracy(probs, self.eval_set.labels))
        self.total = self.total + probs

    def report(self) -> dict:
        if not self.each:
            return {}
        ensemble = accuracy(self.total, self.eval_set.labels)
        print(f"unpaid: first students on the eval set {', '.join(f'{a:.4f}' for a in self.each)}"
              f"; averaged {ensemble:.4f}", flush=True)
        return {"unpaid_labellers": {"each": self.each, "averaged": ensemble}}


def with_unpaid(ctx: RunContext, first: Optional[keras.Model]) -> Optional[LabelledSet]:
    """The paid set plus :func:`unpaid_part`, or None when unpaid.count is 0."""
    part = unpaid_part(ctx, first)
    return None if part is None else ctx.labelled.with_part(PART, part)


__all__ = ["GENERATORS", "check", "unpaid_part", "with_unpaid"]
