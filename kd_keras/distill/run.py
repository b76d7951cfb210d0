"""The FS-BBT job end to end: check everything, label the real images, grow them with the
configured generators, label what is chosen, distill the student, evaluate and export."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import time
from typing import Callable, Optional

import keras
import numpy as np
import tensorflow as tf

from kd_keras import models, synthesis
from kd_keras.context import RunContext
from kd_keras.data import ImageSet, check_image_shape
from kd_keras.distill.student import planned_epochs, train_student
from kd_keras.errors import ConfigError, DataError, KdKerasError
from kd_keras.export import export_classifier
from kd_keras.export.tflite import FILES as TFLITE_FILES
from kd_keras.export.tflite import check_runtime, parse_formats, tflite_report, write_tflite
from kd_keras.strategy import chief_watch
from kd_keras.supervised import accuracy, predict_logits
from kd_keras.synthesis.selection import choose_and_label
from kd_keras.teachers import Teacher
from kd_keras.teachers.labelling import label_arrays, label_seen
from kd_keras.tensorboard import SummaryLog
from kd_keras.validation import check_config
from kd_keras.workdir import Workdir

OUTPUTS = ("student", "student.keras", "checkpoints", "report.json", "cvae.weights.h5",
           "cvae_checkpoints", *TFLITE_FILES.values(),
           "selection.npz", "training_set.json", "tb")
# Config sections the labelled training set and the student checkpoint depend on: a
# resumed run with other values would train on a stale selection or crash.
MANIFEST_SECTIONS = ("seed", "data", "query", "synthesis", "selection", "mixup", "cutmix",
                     "cvae", "student")
MANIFEST_SKIP = ("data.train", "data.test", "data.data_dir", "query.batch_size",
                 "query.concurrency", "query.budget", "query.max_tries",
                 "query.backoff_seconds", "query.timeout_seconds", "student.epochs")


class _QueryLog(keras.callbacks.Callback):
    """Writes the teacher answers spent so far next to the student's TensorBoard scalars."""

    def __init__(self, log: SummaryLog, teacher: Teacher):
        super().__init__()
        self.log, self.teacher = log, teacher

    def on_epoch_end(self, epoch, logs=None):
        self.log.scalar("teacher/queries_sent", self.teacher.paid, epoch)
        self.log.scalar("teacher/cache_hits", self.teacher.stats.cache_hits, epoch)


class _EvalAccuracy(keras.callbacks.Callback):
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


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(_flatten(v, key + ".") if isinstance(v, dict) else {key: v})
    return out


def manifest(config, unlabeled: ImageSet, teacher: Teacher) -> dict:
    """What the run's training set depends on: settings, the real images, the teacher."""
    settings = _flatten({k: config.to_dict()[k] for k in MANIFEST_SECTIONS})
    settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.items()
                if k not in MANIFEST_SKIP}
    digest = hashlib.sha256()  # in chunks: no copy of the whole set (the same digest)
    for i in range(0, len(unlabeled), 1024):
        digest.update(np.ascontiguousarray(unlabeled.images[i:i + 1024], np.float32).tobytes())
    settings["unlabeled.images"] = f"{len(unlabeled)} images, sha256 {digest.hexdigest()[:16]}"
    settings["teacher"] = teacher.identity
    return settings


def check_resume(ctx: RunContext, current: dict) -> None:
    """On --resume, refuses a config that differs from the run's in what matters; otherwise
    records the run's manifest (``WORKDIR/training_set.json``)."""
    path = ctx.workdir.claim("training_set.json")
    if ctx.resume:
        try:
            with open(path) as f:
                saved = json.load(f)
        except FileNotFoundError:
            saved = None
        except (OSError, ValueError):
            raise DataError(f"{path} is unreadable; run without --resume to start over") from None
        if saved is not None:
            changed = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
            if changed:
                detail = "; ".join(f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in changed[:6])
                raise ConfigError(f"--resume with settings that differ from the run in "
                                  f"{ctx.workdir.path}: {detail}; use the original settings, "
                                  "or another --workdir for a new run")
            return
    with open(path, "w") as f:
        json.dump(current, f, indent=1, sort_keys=True)


def plan(config, n_real: int) -> tuple[dict, dict, dict]:
    """(sources, generators, images per generator) for ``n_real`` real images."""
    sources = synthesis.parse_sources(config.synthesis.sources)
    generators = {n: synthesis.build(n, config) for n in sources if n != synthesis.REAL}
    counts = synthesis.plan_counts(sources, generators, config.synthesis.num_synthetic, n_real,
                                   config.synthesis.split)
    return sources, generators, counts


def fit_budget(config, n_real: int) -> None:
    """Plans the run for ``query.budget`` before any query: the synthetic count M becomes
    ``budget - n_real`` (fewer or more than the config's) unless ``synthesis.fixed_count``
    (set when the user gave M explicitly), in which case a plan that cannot fit is an error."""
    budget, m = config.query.budget, config.synthesis.num_synthetic
    if not budget or config.student.targets == "true_labels":
        return
    if budget < n_real:
        raise ConfigError(f"query.budget={budget} is less than the {n_real} real images, which "
                          "are all labelled first; raise the budget or use fewer images")
    has_generators = any(n != synthesis.REAL for n in synthesis.parse_sources(config.synthesis.sources))
    if not has_generators or (config.synthesis.fixed_count and n_real + m <= budget):
        return
    if config.synthesis.fixed_count:
        raise ConfigError(f"the plan needs up to {n_real + m} teacher answers ({n_real} real + {m} "
                          f"synthetic), more than query.budget={budget}; lower "
                          "synthesis.num_synthetic or raise the budget")
    if m == budget - n_real:
        return
    with config.unlocked():
        config.synthesis.num_synthetic = budget - n_real
    print(f"budget: {budget} answers: {n_real} real images + {budget - n_real} synthetic "
          f"(synthesis.num_synthetic {m} -> {budget - n_real})", flush=True)


def build_training_set(ctx: RunContext, unlabeled: ImageSet) -> dict[str, tuple]:
    """{source name: (images, teacher probabilities)}: the real images and each generator's."""
    config, teacher = ctx.config, ctx.teacher
    if config.student.targets == "true_labels":  # the "student alone" reference
        if unlabeled.labels is None:
            raise DataError(f"student.targets=true_labels needs labels; {unlabeled.name} has none")
        return {"real": (unlabeled.images,
                         np.eye(config.data.num_classes, dtype=np.float32)[unlabeled.labels])}
    real, grid = unlabeled.images, config.synthesis.grid_size
    sources, generators, counts = plan(config, len(real))
    with ctx.stage("label_real"):  # encoded for the teacher: the student sees its pixels
        real, real_probs = label_seen(real, teacher, "real images")
    ctx.log.grid("samples/real", real, grid)
    for name, generator in generators.items():
        if counts[name]:
            generator.prepare(ctx, real, real_probs)
    probe = lambda x, y: train_student(ctx, x, y, epochs=config.selection.probe_epochs,  # noqa: E731
                                       verbose=0)
    labelled = choose_and_label(ctx, real, real_probs, generators, counts, probe)
    for name, (images, _) in labelled.items():
        ctx.log.grid(f"samples/{name}", images, grid)
    ctx.log.scalar("teacher/queries_sent", teacher.paid, 0)
    return ({"real": (real, real_probs)} if synthesis.REAL in sources else {}) | labelled


SHARED_FILE = "training_set.npz"


def publish_training_set(parts: dict, shared_dir: str) -> str:
    """Writes the labelled training set once where every worker can read it through
    ``tf.io.gfile`` (local disk, GCS, HDFS): written beside, then renamed into place."""
    tf.io.gfile.makedirs(shared_dir)
    path = f"{shared_dir.rstrip('/')}/{SHARED_FILE}"
    arrays = {f"{name}/{part}": a for name, (x, y) in parts.items()
              for part, a in (("x", x), ("y", y))}
    buffer = io.BytesIO()  # zip needs a seekable file; remote gfile files may not be
    np.savez(buffer, order=np.array(list(parts)), **arrays)
    with tf.io.gfile.GFile(path + ".partial", "wb") as f:
        f.write(buffer.getvalue())
    tf.io.gfile.rename(path + ".partial", path, overwrite=True)
    return path


def read_training_set(shared_dir: str, wait_seconds: float,
                      chief_gone: Optional[Callable[[], None]] = None) -> dict:
    """The chief's labelled training set, waiting up to ``wait_seconds`` for it to appear
    (``chief_gone``, if given, raises once the chief is known to be gone)."""
    path = f"{shared_dir.rstrip('/')}/{SHARED_FILE}"
    deadline = time.time() + wait_seconds
    while not tf.io.gfile.exists(path):
        if time.time() > deadline:
            raise DataError(f"waited {wait_seconds:.0f}s for the chief worker's training set "
                            f"at {path}; do all workers give the same --shared_dir?")
        if chief_gone is not None:
            chief_gone()
        time.sleep(1.0)
    print(f"training set: reading the chief's labelled images from {path}", flush=True)
    with tf.io.gfile.GFile(path, "rb") as f:
        with np.load(io.BytesIO(f.read())) as saved:
            return {str(n): (saved[f"{n}/x"], saved[f"{n}/y"]) for n in saved["order"]}


def evaluate(student: keras.Model, eval_set: ImageSet, teacher: Optional[Teacher],
             teacher_sample: int = 1000, seed: int = 0, report: Optional[dict] = None,
             student_out: Optional[np.ndarray] = None) -> dict:
    """Student accuracy on every eval image (no answers bought), and, with a teacher, its
    accuracy and agreement on a sample of at most ``teacher_sample`` of them (0: none).
    Results go into ``report`` (a new dict if None) as they are known, so a teacher failing
    midway leaves the student's own figures there."""
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


@dataclasses.dataclass
class RunResult:
    """The trained student (logits), the report written to ``report.json``, its History."""

    student: keras.Model
    report: dict
    history: Optional[keras.callbacks.History]


def check_student(student: keras.Model, num_classes: int) -> None:
    """Refuses a user's student that cannot be distilled into as it is."""
    if student.output_shape[-1] != num_classes:
        raise ConfigError(f"the student answers {student.output_shape[-1]} classes, the "
                          f"teacher {num_classes}")
    last = getattr(student.layers[-1], "activation", None)
    if getattr(last, "__name__", "") == "softmax" or isinstance(student.layers[-1],
                                                                 keras.layers.Softmax):
        raise ConfigError("the student ends in a softmax, but distillation needs its logits: "
                          "build it with a linear head (e.g. classifier_activation=None)")


def run_fsbbt(*args, **kwargs) -> dict:
    """:func:`fsbbt`, returning only the report (for commands and benchmarks)."""
    return fsbbt(*args, **kwargs).report


def preflight(config, teacher: Teacher, unlabeled: ImageSet, eval_set: Optional[ImageSet],
              workdir: str | Workdir, strategy, resume: bool,
              student: Optional[keras.Model]) -> RunContext:
    """Everything checked before the first answer is bought: the config, the folder's
    outputs, image shapes, the plan against the budget, a user's student and, on
    ``resume``, that the settings match the interrupted run's. Returns the run context."""
    check_config(config)
    wd = workdir if isinstance(workdir, Workdir) else Workdir(workdir)
    wd.check_outputs(OUTPUTS)
    shape = tuple(config.data.image_shape)
    check_image_shape(unlabeled.images, shape, f"--unlabeled {unlabeled.name}")
    if eval_set is not None:
        check_image_shape(eval_set.images, shape, f"--eval {eval_set.name}")
    if config.student.targets != "true_labels":
        fit_budget(config, len(unlabeled))
    if parse_formats(config.export.tflite):
        check_runtime()
    if student is None:  # built once now, so a model that cannot be is found before paying
        student_check = models.build(config.student.model, shape, config.data.num_classes)
        check_student(student_check, config.data.num_classes)
        del student_check
    else:
        check_student(student, config.data.num_classes)
    ctx = RunContext(config, wd, strategy or tf.distribute.get_strategy(), resume, teacher,
                     SummaryLog(os.path.join(wd.claim("tb"), "synthesis")), student=student)
    check_resume(ctx, manifest(config, unlabeled, teacher))
    teacher.open_ledger(wd.path, resume)
    return ctx


def training_set(ctx: RunContext, unlabeled: ImageSet, shared_dir: Optional[str],
                 chief: bool, wait_seconds: float) -> dict:
    """Builds the labelled training set, or (a non-chief worker with ``shared_dir``) reads
    the one the chief published. With a shared folder only the chief builds it, so its CVAE
    and probe train on this process alone (no collective ops for the others to join)."""
    if shared_dir and not chief:
        return read_training_set(shared_dir, wait_seconds, chief_watch(ctx.strategy))
    local = dataclasses.replace(ctx, strategy=tf.distribute.get_strategy()) if shared_dir else ctx
    parts = build_training_set(local, unlabeled)
    if shared_dir:
        print(f"training set: published to {publish_training_set(parts, shared_dir)}", flush=True)
    return parts


def _shown(config, part: str) -> int:
    """How many times a labelled part appears in each student epoch."""
    return int(config.student.get("real_repeat", 1)) if part == synthesis.REAL else 1


def distill_on(ctx: RunContext, parts: dict, eval_set: Optional[ImageSet],
               callbacks: Optional[list]) -> keras.Model:
    """Trains the student on every labelled part, watched in TensorBoard. The real images
    appear ``student.real_repeat`` times in each epoch (their answers are paid once)."""
    shown = [p for k, p in parts.items() for _ in range(_shown(ctx.config, k))]
    x, y = (np.concatenate([p[i] for p in shown]) for i in (0, 1))
    watch = [_QueryLog(ctx.log, ctx.teacher)]
    if eval_set is not None and eval_set.labels is not None and ctx.config.eval.epoch_sample:
        watch.append(_EvalAccuracy(ctx.workdir.join("tb", "student", "eval"), eval_set,
                                   ctx.config.eval.epoch_sample, ctx.config.seed))
    with ctx.stage("student_train"):
        return train_student(ctx, x, y, checkpoints=True, callbacks=watch + (callbacks or []))


def _write_report(ctx: RunContext, report: dict, start: float) -> None:
    report["stage_seconds"] = {k: round(v, 2) for k, v in ctx.timings.items()}
    report["wall_seconds"] = round(time.time() - start, 2)
    with open(ctx.workdir.claim("report.json"), "w") as f:
        json.dump(report, f, indent=2)


def calibration_sample(parts: dict, count: int, seed: int) -> np.ndarray:
    """``count`` training images drawn evenly at random across the labelled parts (for an
    int8 student's calibration: the run's own images, no answers)."""
    sizes = [len(x) for x, _ in parts.values()]
    chosen = np.sort(np.random.default_rng([seed, 8]).permutation(sum(sizes))[:count])
    out, offset = [], 0
    for (x, _), size in zip(parts.values(), sizes):
        here = chosen[(chosen >= offset) & (chosen < offset + size)] - offset
        out.append(np.asarray(x[here], np.float32))
        offset += size
    return np.concatenate(out)


def finish(ctx: RunContext, student: keras.Model, parts: dict, n_real: int,
           eval_set: Optional[ImageSet], eval_teacher: Optional[Teacher], start: float) -> dict:
    """Exports the student, then evaluates it and writes ``report.json``. The student is
    exported first, so an evaluation that fails (the teacher gone) loses nothing: the report
    then says what failed and the error is raised."""
    config, teacher, wd = ctx.config, ctx.teacher, ctx.workdir
    report = {"name": config.name, "sources": config.synthesis.sources,
              "targets": config.student.targets, "n_real": n_real,
              "images_per_source": {k: len(v[0]) for k, v in parts.items()},
              "n_train": sum(len(v[0]) for v in parts.values()),
              "student_epochs": planned_epochs(config.student, sum(
                  len(v[0]) * _shown(config, k) for k, v in parts.items())),
              "teacher_queries": teacher.paid, "teacher_queries_this_process": teacher.stats.sent,
              "teacher_cache_hits": teacher.stats.cache_hits, "budget": config.query.budget}
    with ctx.stage("export"):
        export_classifier(student, wd, "student")
    student_out = predict_logits(student, eval_set.images) if eval_set is not None else None
    formats = parse_formats(config.export.tflite)
    if formats:
        with ctx.stage("export_tflite"):
            for name in formats:
                wd.claim(TFLITE_FILES[name])
            files = write_tflite(wd.join("student"), formats, calibration_sample(
                parts, int(config.export.calibration_images), config.seed), wd.path)
            report["tflite"] = tflite_report(
                files, *((eval_set.images, eval_set.labels, student_out) if eval_set is not None
                         else (None, None, None)))
    if eval_set is not None:
        try:
            with ctx.stage("eval"):
                evaluate(student, eval_set, eval_teacher, config.eval.teacher_sample,
                         config.seed, report, student_out)
        except KdKerasError as e:
            report["eval_error"] = str(e)
            _write_report(ctx, report, start)
            raise type(e)(f"{e} (the student is saved in {wd.join('student')} and "
                          f"{wd.join('student.keras')}; {wd.join('report.json')} says what "
                          "evaluation did not finish)") from None
    _write_report(ctx, report, start)
    summary = ", ".join(f"{k} {report[k]:.4f}" for k in ("student_accuracy", "teacher_accuracy",
                                                        "agreement") if k in report)
    print(f"done: {summary}; teacher answers {report['teacher_queries']} "
          f"(+{report.get('eval_queries', 0)} for eval); report in {wd.join('report.json')}\n"
          f"  student: {wd.join('student')} (SavedModel) and {wd.join('student.keras')}\n"
          f"  TensorBoard: tensorboard --logdir {wd.join('tb')}", flush=True)
    return report


def fsbbt(config, teacher: Teacher, unlabeled: ImageSet, eval_set: Optional[ImageSet],
          workdir: str | Workdir, strategy: Optional[tf.distribute.Strategy] = None,
          resume: bool = False, callbacks: Optional[list] = None,
          shared_dir: Optional[str] = None, chief: bool = True,
          wait_seconds: float = 3600.0, student: Optional[keras.Model] = None) -> RunResult:
    """Runs FS-BBT as ``config`` says and writes the student, report and logs to ``workdir``.

    ``student`` is a user's Keras model (logits) trained in place of ``config.student.model``.
    Multi-worker runs with ``shared_dir``: the chief labels the training set and publishes
    it there; the other workers wait up to ``wait_seconds`` for it and never query.
    """
    start = time.time()
    ctx = preflight(config, teacher, unlabeled, eval_set, workdir, strategy, resume, student)
    eval_teacher = None if shared_dir and not chief else teacher.fork()  # counted apart
    parts = training_set(ctx, unlabeled, shared_dir, chief, wait_seconds)
    trained = distill_on(ctx, parts, eval_set, callbacks)
    report = finish(ctx, trained, parts, len(unlabeled), eval_set, eval_teacher, start)
    return RunResult(trained, report, ctx.history)


__all__ = ["RunResult", "build_training_set", "check_student", "fit_budget", "fsbbt", "evaluate", "manifest", "plan", "run_fsbbt"]
