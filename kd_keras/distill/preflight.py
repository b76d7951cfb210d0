"""Everything checked before the first answer is bought."""

from __future__ import annotations

import os
from typing import Optional

import keras
import tensorflow as tf

from kd_keras import models
from kd_keras.context import RunContext
from kd_keras.data import ImageSet, check_image_shape
from kd_keras.data.rows import compact
from kd_keras.distill.plan import plan_budget
from kd_keras.distill.resume import check_resume, manifest
from kd_keras.distill.unpaid import resolve as resolve_unpaid
from kd_keras.errors import ConfigError
from kd_keras.export.tflite import check_runtime, parse_formats
from kd_keras.tensorboard import SummaryLog
from kd_keras.validation import check_config
from kd_keras.workdir import Workdir


def check_student(student: keras.Model, num_classes: int, shape: tuple) -> None:
    """Refuses a user's student that cannot be distilled into as it is (images of
    ``shape``)."""
    try:
        classes = student.output_shape[-1]
    except AttributeError:  # found here, not when it is exported after the answers are paid
        raise ConfigError(f"the student {student.name!r} has no fixed input and output (a "
                          "subclassed model?): build it with keras.Input, e.g. the functional "
                          f"API or keras.Sequential, for images of shape {shape}") from None
    if classes != num_classes:
        raise ConfigError(f"the student answers {classes} classes, the teacher {num_classes}")
    last = getattr(student.layers[-1], "activation", None)
    if getattr(last, "__name__", "") == "softmax" or isinstance(student.layers[-1],
                                                                 keras.layers.Softmax):
        raise ConfigError("the student ends in a softmax, but distillation needs its logits: "
                          "build it with a linear head (e.g. classifier_activation=None)")


def preflight(config, teacher, unlabeled: ImageSet, eval_set: Optional[ImageSet],
              workdir: str | Workdir, strategy: Optional[tf.distribute.Strategy] = None,
              resume: bool = False, student: Optional[keras.Model] = None,
              outputs: tuple = ()) -> RunContext:
    """Checks the config, the folder's ``outputs``, image shapes, the plan against the
    budget, the unpaid images, a user's student and, on ``resume``, that the settings match
    the interrupted run's. Returns the run's state with the planned config (budget and
    unpaid count resolved) and the real images held compactly (uint8 when they are 8-bit)."""
    check_config(config)
    wd = workdir if isinstance(workdir, Workdir) else Workdir(workdir)
    wd.check_outputs(outputs)
    shape = tuple(config.data.image_shape)
    check_image_shape(unlabeled.images, shape, f"--unlabeled {unlabeled.name}")
    if eval_set is not None:
        check_image_shape(eval_set.images, shape, f"--eval {eval_set.name}")
    config = resolve_unpaid(plan_budget(config, len(unlabeled)), len(unlabeled), student)
    if parse_formats(config.export.tflite):
        check_runtime()
    if student is None:  # built once now, so a model that cannot be is found before paying
        student_check = models.build(config.student.model, shape, config.data.num_classes)
        check_student(student_check, config.data.num_classes, shape)
        del student_check
    else:
        check_student(student, config.data.num_classes, shape)
    real = ImageSet(compact(unlabeled.images), unlabeled.labels, unlabeled.num_classes,
                    unlabeled.name)
    ctx = RunContext(config, wd, strategy or tf.distribute.get_strategy(), resume, teacher,
                     SummaryLog(os.path.join(wd.claim("tb"), "synthesis")), student=student,
                     unlabeled=real, eval_set=eval_set)
    check_resume(ctx, manifest(config, real, teacher))
    teacher.open_ledger(wd.path, resume)
    return ctx
