"""One object for what every stage of a run needs: config, folder, strategy, teacher, logs."""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from typing import Iterator, Optional

import tensorflow as tf

from kd_keras.tensorboard import SummaryLog
from kd_keras.workdir import Workdir


@dataclasses.dataclass
class RunContext:
    """The run a stage belongs to.

    Attributes:
      config: the resolved, validated experiment config.
      workdir: the run's folder (see :class:`kd_keras.workdir.Workdir`).
      strategy: the tf.distribute strategy models are built under.
      resume: whether to continue an earlier run in ``workdir``.
      teacher: the training teacher (budgeted), or None where no answers are bought.
      log: TensorBoard writer for scalars and image grids outside ``fit``.
      timings: seconds per stage, filled by :meth:`stage`.
      student: a Keras model (logits) given by the user, trained in place; probes are
        fresh clones of it. None builds ``config.student.model``.
      history: the final student's ``fit`` History.
      unlabeled: the user's real images (compact: uint8 when 8-bit).
      eval_set: labelled images to report on, or None.
      eval_teacher: the teacher evaluation asks (counted apart), or None.
      labelled: the labelled training set, once built or read.
      real, real_probs: the real images as the teacher saw them (ImageRows) and its
        answers to them, once labelled (on the process that built the set).
      shared_dir: a multi-worker run's shared folder ("" alone); chief: this worker builds
        the set there; wait_seconds: how long the others wait for it.
      started: when the run began (``time.time()``).
      labellers: the first students (logits) when the second student's fresh mixes need
        their answers (``unpaid.fresh``) or its feature hint their features
        (``unpaid.hint``), else None.
      findings: figures a stage adds to ``report.json`` (e.g. the first students' accuracy).
    """

    config: object
    workdir: Workdir
    strategy: tf.distribute.Strategy
    resume: bool = False
    teacher: Optional[object] = None
    log: Optional[SummaryLog] = None
    timings: dict = dataclasses.field(default_factory=dict)
    student: Optional[object] = None  # a user's Keras model to train instead of config's
    history: Optional[object] = None  # the student's training History, once trained
    unlabeled: Optional[object] = None
    eval_set: Optional[object] = None
    eval_teacher: Optional[object] = None
    labelled: Optional[object] = None
    real: Optional[object] = None
    real_probs: Optional[object] = None
    shared_dir: str = ""
    chief: bool = True
    wait_seconds: float = 3600.0
    started: float = dataclasses.field(default_factory=time.time)
    labellers: Optional[list] = None
    findings: dict = dataclasses.field(default_factory=dict)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Times the enclosed block into ``timings[name]`` (adding up repeated stages)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start

    @staticmethod
    def verbosity() -> int:
        """Keras ``fit`` verbosity: a progress bar on a terminal, one line per epoch in logs."""
        return 1 if sys.stdout.isatty() else 2
