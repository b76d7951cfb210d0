"""Evaluating a student: accuracy on labelled images (no answers), its agreement with the
teacher on a sample (answers counted apart), and the callbacks that watch it in TensorBoard
or the log."""

from __future__ import annotations

import time
from typing import Optional

import keras
import numpy as np

from kd_keras.data import ImageSet
from kd_keras.data.rows import unit_float
from kd_keras.tensorboard import SummaryLog


def accuracy(logits_or_probs: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of predictions against integer labels."""
    return float(np.mean(np.argmax(logits_or_probs, axis=-1) == labels))


def predict_logits(model: keras.Model, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """The model's outputs for ``images`` (uint8 or float), in batches, on this process
    alone (no strategy)."""
    out = [keras.ops.convert_to_numpy(model(unit_float(images[i:i + batch_size]), training=False))
           for i in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, model.output_shape[-1]), np.float32)


class QueryLog(keras.callbacks.Callback):
    """Writes the teacher answers spent so far next to the student's TensorBoard scalars."""

    def __init__(self, log: SummaryLog, teacher):
        super().__init__()
        self.log, self.teacher = log, teacher

    def on_epoch_end(self, epoch, logs=None):
        self.log.scalar("teacher/queries_sent", self.teacher.paid, epoch)
        self.log.scalar("teacher/cache_hits", self.teacher.stats.cache_hits, epoch)


class EpochProgress(keras.callbacks.Callback):
    """About ``lines`` lines over a training that ``fit`` runs silently (the first students
    that label unpaid images: minutes each on 28x28 images, far longer on colour ones), so
    long work shows how far it is: ``LABEL: epoch E/N, loss L, S s``."""

    def __init__(self, label: str, epochs: int, lines: int = 5):
        super().__init__()
        if epochs < 1 or lines < 1:
            raise ValueError(f"epochs and lines must be at least 1, not {epochs} and {lines}")
        self.label, self.epochs, self.every = label, epochs, -(-epochs // lines)
        self.started = time.perf_counter()

    def on_train_begin(self, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        if done % self.every and done != self.epochs:
            return
        loss = (logs or {}).get("loss")
        print(f"{self.label}: epoch {done}/{self.epochs}"
              + ("" if loss is None else f", loss {float(loss):.4f}")
              + f", {time.perf_counter() - self.started:.0f} s", flush=True)


class EvalAccuracy(keras.callbacks.Callback):
    """After every epoch, the student's accuracy on (a fixed sample of) the labelled eval
    images, in TensorBoard next to its loss (``tb/student/eval``). Buys no answers."""

    def __init__(self, logdir: str, eval_set: ImageSet, size: int, seed: int):
        super().__init__()
        idx = np.arange(len(eval_set))
        if len(idx) > size:
            idx = np.sort(np.random.default_rng(seed).permutation(len(idx))[:size])
        self.images, self.labels = eval_set.images[idx], eval_set.labels[idx]
        self.log = SummaryLog(logdir)

    def on_epoch_end(self, epoch, logs=None):
        student = self.model.student
        acc = accuracy(predict_logits(student, self.images), self.labels)
        self.log.scalar("epoch_student_accuracy", acc, epoch)
        if logs is not None:
            logs["eval_student_accuracy"] = acc


def evaluate(student: keras.Model, eval_set: ImageSet, teacher, teacher_sample: int = 1000,
             seed: int = 0, report: Optional[dict] = None,
             student_out: Optional[np.ndarray] = None) -> dict:
    """Student accuracy on every eval image (no answers bought), and, with a teacher, its
    accuracy and agreement on a sample of at most ``teacher_sample`` of them (0: none).
    Results go into ``report`` (a new dict if None) as they are known, so a teacher failing
    midway leaves the student's own figures there."""
    from kd_keras.teachers.labelling import label_arrays

    if student_out is None:  # the student's logits on every eval image
        student_out = predict_logits(student, eval_set.images)
    report = {} if report is None else report
    report.update(n_eval=len(eval_set), eval_queries=0)
    if eval_set.labels is not None:
        report["student_accuracy"] = accuracy(student_out, eval_set.labels)
    if teacher is None or teacher_sample <= 0:  # e.g. a worker reading the chief's set
        return report
    idx = np.arange(len(eval_set))
    if len(idx) > teacher_sample:
        idx = np.sort(np.random.default_rng(seed).permutation(len(idx))[:teacher_sample])
    teacher_probs = label_arrays(eval_set.images[idx], teacher, "eval images (teacher sample)")
    report.update(agreement=accuracy(student_out[idx], teacher_probs.argmax(1)),
                  eval_queries=teacher.stats.sent, eval_teacher_sample=len(idx))
    if eval_set.labels is not None:
        report["teacher_accuracy"] = accuracy(teacher_probs, eval_set.labels[idx])
        report["student_accuracy_on_sample"] = accuracy(student_out[idx], eval_set.labels[idx])
    return report
