"""The FS-BBT job end to end: check everything (:mod:`~kd_keras.distill.preflight`), label
the real images and grow them (:mod:`~kd_keras.distill.labelled`), distill the student
(:mod:`~kd_keras.distill.student`), export and evaluate (:mod:`~kd_keras.distill.finish`).
Every stage reads and fills one :class:`kd_keras.context.RunContext`."""

from __future__ import annotations

import dataclasses
from typing import Optional

import keras
import tensorflow as tf

from kd_keras.context import RunContext
from kd_keras.data import ImageSet
from kd_keras.distill.evaluation import EvalAccuracy, QueryLog
from kd_keras.distill.finish import finish
from kd_keras.distill.labelled import PARTS, SHARED_COPY, training_set
from kd_keras.distill.preflight import preflight
from kd_keras.distill.primer import check as check_primer
from kd_keras.distill.primer import primed
from kd_keras.distill.student import train_student
from kd_keras.distill.unpaid import LABELLERS, with_unpaid
from kd_keras.export.tflite import FILES as TFLITE_FILES
from kd_keras.workdir import Workdir

# the second student's checkpoints and TensorBoard runs (unpaid images or a primer's targets)
UNPAID_STUDENT = "student_unpaid"
OUTPUTS = ("student", "student.keras", "checkpoints", f"checkpoints_{UNPAID_STUDENT}",
           "report.json", "cvae.weights.h5",
           "cvae_checkpoints", *TFLITE_FILES.values(), PARTS, SHARED_COPY, LABELLERS,
           "selection.npz", "training_set.json", "tb")


@dataclasses.dataclass
class RunResult:
    """The trained student (logits), the report written to ``report.json``, its History."""

    student: keras.Model
    report: dict
    history: Optional[keras.callbacks.History]


def distill_on(ctx: RunContext, callbacks: Optional[list] = None,
               name: str = "student") -> keras.Model:
    """Trains the student on the labelled set, watched in TensorBoard. The real images
    appear ``student.real_repeat`` times in each epoch (their answers are paid once).
    ``name`` names the training's checkpoints and TensorBoard folder (one per student)."""
    watch = [QueryLog(ctx.log, ctx.teacher)]
    eval_set = ctx.eval_set
    if eval_set is not None and eval_set.labels is not None and ctx.config.eval.epoch_sample:
        watch.append(EvalAccuracy(ctx.workdir.join("tb", name, "eval"), eval_set,
                                  ctx.config.eval.epoch_sample, ctx.config.seed))
    with ctx.stage("student_train" if name == "student" else f"{name}_train"):
        return train_student(ctx, ctx.labelled, checkpoints=True, name=name,
                             callbacks=watch + (callbacks or []),
                             labellers=None if name == "student" else ctx.labellers)


def first_student_needed(config) -> bool:
    """False when another model's first students label the unpaid images and no primer
    learns from the first student: it would be trained (77 s of a 10,000-answer run on
    Fashion-MNIST) only to be thrown away."""
    return not (config.unpaid.count and config.unpaid.model and not config.primer.weight)


def fsbbt(config, teacher, unlabeled: ImageSet, eval_set: Optional[ImageSet],
          workdir: str | Workdir, strategy: Optional[tf.distribute.Strategy] = None,
          resume: bool = False, callbacks: Optional[list] = None,
          shared_dir: Optional[str] = None, chief: bool = True,
          wait_seconds: float = 3600.0, student: Optional[keras.Model] = None) -> RunResult:
    """Runs FS-BBT as ``config`` says and writes the student, report and logs to ``workdir``.

    ``student`` is a user's Keras model (logits) trained in place of ``config.student.model``.
    Multi-worker runs with ``shared_dir``: the chief labels the training set and publishes
    it there; the other workers wait up to ``wait_seconds`` for it and never query.
    """
    ctx = preflight(config, teacher, unlabeled, eval_set, workdir, strategy, resume, student,
                    OUTPUTS)
    check_primer(ctx.config)
    ctx.shared_dir, ctx.chief, ctx.wait_seconds = shared_dir or "", chief, wait_seconds
    ctx.eval_teacher = None if shared_dir and not chief else teacher.fork()  # counted apart
    ctx.labelled = training_set(ctx)
    trained = distill_on(ctx, callbacks) if first_student_needed(ctx.config) else None
    second = with_unpaid(ctx, trained)
    second = primed(ctx, trained, second or ctx.labelled) or second
    if second is not None:  # a second student: unpaid images too, or a primer's targets
        ctx.labelled = second
        trained = distill_on(ctx, callbacks, name=UNPAID_STUDENT)
    return RunResult(trained, finish(ctx, trained), ctx.history)


def run_fsbbt(*args, **kwargs) -> dict:
    """:func:`fsbbt`, returning only the report (for commands and benchmarks)."""
    return fsbbt(*args, **kwargs).report


__all__ = ["OUTPUTS", "RunResult", "first_student_needed", "fsbbt", "run_fsbbt"]
