"""The FS-BBT job end to end: label the real images, grow them with MixUp and a CVAE,
label everything through the teacher, distill the student, evaluate and export."""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import time
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from kd_keras import models
from kd_keras.data import ImageSet, check_image_shape
from kd_keras.distill.augment import augment_dataset
from kd_keras.distill.distiller import Distiller
from kd_keras.distill.pipeline import collect, label_arrays, label_batches
from kd_keras.errors import ConfigError, DataError
from kd_keras.export import export_classifier
from kd_keras.strategy import compile_built
from kd_keras.supervised import accuracy, fit_verbosity, predict_logits
from kd_keras.synthesis.cvae import CVAE, train_cvae
from kd_keras.synthesis.mixup import MixupPlan, mixup_dataset, plan_mixup
from kd_keras.teachers import Teacher
from kd_keras.tensorboard import SummaryLog

SOURCES = ("real", "mixup", "cvae")


def parse_sources(text: str) -> set[str]:
    """``"real,mixup,cvae"`` -> a set; an unknown or empty list is an error."""
    sources = {s.strip() for s in text.replace("+", ",").split(",") if s.strip()}
    unknown = sources - set(SOURCES)
    if unknown or not sources:
        raise ConfigError(f"synthesis.sources must name some of {SOURCES}, got {text!r}")
    return sources


def synthetic_counts(config, n_real: int) -> tuple[Optional[MixupPlan], int]:
    """(MixUp plan or None, number of CVAE images) for the config's sources and M."""
    sources, m, mx = parse_sources(config.synthesis.sources), config.synthesis.num_synthetic, config.mixup
    share = config.synthesis.cvae_share
    plan_args = dict(alpha=mx.alpha, decimals=mx.decimals, low=mx.low, high=mx.high, seed=config.seed)
    if "mixup" in sources and "cvae" in sources:
        if share < 0:  # the paper's rule: CVAE images replace the dropped near-copy pairs
            plan = plan_mixup(n_real, m, fill=False, **plan_args)
            return plan, plan.dropped
        n_cvae = int(round(share * m))
        return plan_mixup(n_real, m - n_cvae, fill=True, **plan_args), n_cvae
    if "mixup" in sources:
        return plan_mixup(n_real, m, fill=True, **plan_args), 0
    return None, m if "cvae" in sources else 0


class _QueryLog(keras.callbacks.Callback):
    """Writes the teacher queries spent so far next to the student's TensorBoard scalars."""

    def __init__(self, log: SummaryLog, teacher: Teacher):
        super().__init__()
        self.log, self.teacher = log, teacher

    def on_epoch_end(self, epoch, logs=None):
        self.log.scalar("teacher/queries_sent", self.teacher.stats.sent, epoch)
        self.log.scalar("teacher/cache_hits", self.teacher.stats.cache_hits, epoch)


def _get_cvae(config, real: np.ndarray, conditions: np.ndarray, workdir: str, resume: bool,
              strategy, log_dir: str) -> CVAE:
    """Trains the CVAE, or on --resume reloads the one trained before (same samples)."""
    c = config.cvae
    path = os.path.join(workdir, "cvae.weights.h5")
    kwargs = dict(latent_dim=c.latent_dim, likelihood=c.likelihood, uniform_bound=c.uniform_bound)
    if resume and os.path.exists(path):
        print(f"cvae: reloading {path}", flush=True)
        with strategy.scope():
            model = CVAE(real.shape[1:], conditions.shape[1], **kwargs)
        model.load_weights(path)
        return model
    print(f"cvae: training on {len(real)} images for {c.epochs} epochs", flush=True)
    model = train_cvae(real, conditions, epochs=c.epochs, batch_size=c.batch_size,
                       learning_rate=c.learning_rate, seed=config.seed, strategy=strategy,
                       callbacks=[keras.callbacks.TensorBoard(log_dir)], verbose=fit_verbosity(),
                       **kwargs)
    model.save_weights(path)
    return model


def _cvae_conditions(config, probs: np.ndarray) -> np.ndarray:
    if config.cvae.condition == "soft":
        return probs
    return np.eye(probs.shape[1], dtype=np.float32)[probs.argmax(1)]


def build_training_set(config, real: np.ndarray, teacher: Teacher, workdir: str, resume: bool,
                       strategy, timings: dict, log: SummaryLog) -> dict:
    """Real, MixUp and CVAE images with the teacher's probabilities, as the config asks."""
    sources = parse_sources(config.synthesis.sources)
    if config.synthesis.selection not in ("random", "uncertainty"):
        raise ConfigError(f"synthesis.selection must be random or uncertainty, "
                          f"got {config.synthesis.selection!r}")
    grid = config.synthesis.grid_size
    t = time.time()
    real_probs = label_arrays(real, teacher, "real images")
    timings["label_real"] = time.time() - t
    log.grid("samples/real", real, grid)
    parts = {"real": (real, real_probs)} if "real" in sources else {}
    plan, n_cvae = synthetic_counts(config, len(real))
    mixup = None  # a Future while MixUp images are labelled in the background
    if plan is not None:
        print(f"mixup: generating and labelling {len(plan)} images "
              f"({plan.dropped} near-copy pairs dropped)", flush=True)
        if config.synthesis.selection == "uncertainty":
            t = time.time()
            parts["mixup"] = select_by_uncertainty(config, real, real_probs, len(plan), teacher,
                                                   strategy, workdir, resume)
            timings["mixup"] = time.time() - t
        else:
            def label_mixup():
                t = time.time()
                ds, raised = label_batches(mixup_dataset(real, plan, config.mixup.batch_size),
                                           teacher)
                result = collect(ds, raised, len(plan), "mixup", teacher)
                timings["mixup"] = time.time() - t
                return result

            # Labelled in the background while the CVAE trains, so a slow (remote)
            # teacher's latency hides behind training.
            pool = concurrent.futures.ThreadPoolExecutor(1)
            mixup = pool.submit(label_mixup)
            pool.shutdown(wait=False)
            if n_cvae and config.cvae.train_on == "real+mixup":
                parts["mixup"] = mixup.result()
    if n_cvae:
        t = time.time()
        train_x, train_p = real, real_probs
        if "mixup" in parts and config.cvae.train_on == "real+mixup":
            train_x = np.concatenate([real, parts["mixup"][0]])
            train_p = np.concatenate([real_probs, parts["mixup"][1]])
        cvae = _get_cvae(config, train_x, _cvae_conditions(config, train_p), workdir, resume,
                         strategy, os.path.join(workdir, "tb", "cvae"))
        timings["cvae_train"] = time.time() - t
    if mixup is not None:
        parts["mixup"] = mixup.result()  # before "cvae": keeps the training-set order
    if "mixup" in parts:
        log.grid("samples/mixup", parts["mixup"][0], grid)
    if n_cvae:
        t = time.time()
        images, _ = cvae.sample(n_cvae, seed=config.seed)
        parts["cvae"] = (images, label_arrays(images, teacher, "cvae"))
        timings["cvae_label"] = time.time() - t
        log.grid("samples/cvae", images, grid)
    log.scalar("teacher/queries_sent", teacher.stats.sent, 0)
    return parts


def select_by_uncertainty(config, real: np.ndarray, real_probs: np.ndarray, count: int,
                          teacher: Teacher, strategy, workdir: str,
                          resume: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``count`` MixUp images chosen by a probe student's uncertainty, with teacher labels.

    Draws ``pool_factor * count`` candidate pairs (no queries), labels a random ``warmup``
    share of ``count``, trains a probe student briefly on the real and those images, then
    spends the rest of the budget on the candidates whose probe prediction has the highest
    entropy: the images the student would learn the least from are never paid for. The
    choice is saved in ``workdir/selection.npy``; a resumed run reuses it, so it sends
    nothing new.
    """
    sel, mx = config.selection, config.mixup
    pool = plan_mixup(len(real), int(sel.pool_factor * count), alpha=mx.alpha,
                      decimals=mx.decimals, low=mx.low, high=mx.high, seed=config.seed, fill=True)
    n_warm = int(round(sel.warmup * count))
    path = os.path.join(workdir, "selection.npy")
    if resume and os.path.exists(path):
        chosen = np.load(path)
        print(f"selection: reusing the {len(chosen)} MixUp images chosen before ({path})",
              flush=True)
        ds, raised = label_batches(mixup_dataset(real, pool.subset(chosen), mx.batch_size), teacher)
        return collect(ds, raised, len(chosen), "mixup (selected)", teacher)
    warm = pool.subset(np.arange(n_warm))
    print(f"selection: labelling {n_warm} random MixUp images of a pool of {len(pool)}", flush=True)
    ds, raised = label_batches(mixup_dataset(real, warm, mx.batch_size), teacher)
    warm_x, warm_y = collect(ds, raised, n_warm, "mixup (warm-up)", teacher)
    probe = train_student(config, np.concatenate([real, warm_x]),
                          np.concatenate([real_probs, warm_y]), strategy,
                          epochs=sel.probe_epochs, verbose=0)
    rest = pool.subset(np.arange(n_warm, len(pool)))
    entropy = np.concatenate([
        keras.ops.convert_to_numpy(-tf.reduce_sum(tf.nn.softmax(z) * tf.nn.log_softmax(z), -1))
        for z in (probe(x, training=False) for x in mixup_dataset(real, rest, mx.batch_size))])
    top = np.sort(np.argsort(-entropy)[: count - n_warm])
    np.save(path, np.concatenate([np.arange(n_warm), n_warm + top]))
    print(f"selection: labelling the {len(top)} candidates the probe is least sure of "
          f"(mean entropy {entropy.mean():.3f} -> {entropy[top].mean():.3f})", flush=True)
    ds, raised = label_batches(mixup_dataset(real, rest.subset(top), mx.batch_size), teacher)
    x, y = collect(ds, raised, len(top), "mixup (selected)", teacher)
    return np.concatenate([warm_x, x]), np.concatenate([warm_y, y])


def _training_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int,
                      augment: str = "none", shift: float = 0.1) -> tf.data.Dataset:
    ds = (tf.data.Dataset.from_tensor_slices((x, y))
          .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
          .batch(batch_size))
    return augment_dataset(ds, augment, shift, seed).prefetch(tf.data.AUTOTUNE)


def learning_rate_schedule(student_config, steps: int):
    """The student's learning rate: constant, or cosine decay to 0 over all ``steps``."""
    if student_config.lr_schedule == "constant":
        return student_config.learning_rate
    if student_config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(student_config.learning_rate, steps)
    raise ConfigError(f"unknown student.lr_schedule {student_config.lr_schedule!r}: "
                     "constant or cosine")


def train_student(config, x: np.ndarray, y: np.ndarray, strategy, *, workdir: Optional[str] = None,
                  resume: bool = False, callbacks: Optional[list] = None,
                  epochs: Optional[int] = None, verbose: Optional[int] = None) -> keras.Model:
    """Distills the config's student on (x, y) and returns it.

    With ``workdir`` it checkpoints every epoch (resumed with ``resume``) and logs to
    TensorBoard; without, it just trains (e.g. a short-lived probe student).
    """
    s = config.student
    epochs = s.epochs if epochs is None else epochs
    keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        student = models.build(s.model, config.data.image_shape, config.data.num_classes)
        distiller = Distiller(student, loss=s.loss, temperature=s.temperature)
        compile_built(distiller, keras.optimizers.Adam(
            learning_rate_schedule(s, steps=epochs * -(-len(x) // s.batch_size))))
    cbs = list(callbacks or [])
    if workdir is not None:
        backup = os.path.join(workdir, "checkpoints")
        if not resume and os.path.exists(backup):
            shutil.rmtree(backup)
        cbs = [keras.callbacks.BackupAndRestore(backup, delete_checkpoint=True),
               keras.callbacks.TensorBoard(os.path.join(workdir, "tb", "student"))] + cbs
    print(f"student: training {s.model} on {len(x)} images for {epochs} epochs "
          f"(loss {s.loss}, augment {s.augment}, strategy with {strategy.num_replicas_in_sync} replica(s))", flush=True)
    dataset = _training_dataset(x, y, s.batch_size, config.seed, s.augment, s.shift)
    distiller.fit(dataset, epochs=epochs, callbacks=cbs,
                  verbose=fit_verbosity() if verbose is None else verbose, shuffle=False)
    return student


def run_fsbbt(config, teacher: Teacher, unlabeled: ImageSet, eval_set: Optional[ImageSet],
              workdir: str, strategy: Optional[tf.distribute.Strategy] = None,
              resume: bool = False, callbacks: Optional[list] = None) -> dict:
    """Runs FS-BBT as ``config`` says and writes the student, report and logs to ``workdir``."""
    start, timings = time.time(), {}
    strategy = strategy or tf.distribute.get_strategy()
    shape = tuple(config.data.image_shape)
    check_image_shape(unlabeled.images, shape, f"--unlabeled {unlabeled.name}")
    if eval_set is not None:
        check_image_shape(eval_set.images, shape, f"--eval {eval_set.name}")
    os.makedirs(workdir, exist_ok=True)
    log = SummaryLog(os.path.join(workdir, "tb", "synthesis"))
    eval_teacher = teacher.fork()  # eval answers: same cache, counted apart, no budget

    if config.student.targets == "true_labels":  # the "student alone" reference
        if unlabeled.labels is None:
            raise DataError(f"student.targets=true_labels needs labels; {unlabeled.name} has none")
        parts = {"real": (unlabeled.images,
                          np.eye(config.data.num_classes, dtype=np.float32)[unlabeled.labels])}
    else:
        parts = build_training_set(config, unlabeled.images, teacher, workdir, resume, strategy,
                                   timings, log)
    x = np.concatenate([p[0] for p in parts.values()])
    y = np.concatenate([p[1] for p in parts.values()])
    t = time.time()
    student = train_student(config, x, y, strategy, workdir=workdir, resume=resume,
                            callbacks=[_QueryLog(log, teacher)] + (callbacks or []))
    timings["student_train"] = time.time() - t

    report = {"name": config.name, "sources": config.synthesis.sources,
              "targets": config.student.targets,
              "n_real": len(unlabeled), "n_mixup": len(parts.get("mixup", ((),))[0]),
              "n_cvae": len(parts.get("cvae", ((),))[0]), "n_train": len(x),
              "teacher_queries": teacher.stats.sent, "teacher_cache_hits": teacher.stats.cache_hits}
    if eval_set is not None:
        t = time.time()
        student_probs = predict_logits(student, eval_set.images)
        teacher_probs = label_arrays(eval_set.images, eval_teacher, "eval images")
        report["agreement"] = accuracy(student_probs, teacher_probs.argmax(1))
        if eval_set.labels is not None:
            report["student_accuracy"] = accuracy(student_probs, eval_set.labels)
            report["teacher_accuracy"] = accuracy(teacher_probs, eval_set.labels)
        report["eval_queries"] = eval_teacher.stats.sent
        report["n_eval"] = len(eval_set)
        timings["eval"] = time.time() - t
    t = time.time()
    export_classifier(student, os.path.join(workdir, "student"), os.path.join(workdir, "student.keras"))
    timings["export"] = time.time() - t
    report["stage_seconds"] = {k: round(v, 2) for k, v in timings.items()}
    report["wall_seconds"] = round(time.time() - start, 2)
    with open(os.path.join(workdir, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    summary = ", ".join(f"{k} {report[k]:.4f}" for k in ("student_accuracy", "teacher_accuracy",
                                                        "agreement") if k in report)
    print(f"done: {summary}; teacher queries {report['teacher_queries']} "
          f"(+{report.get('eval_queries', 0)} for eval); report in "
          f"{os.path.join(workdir, 'report.json')}", flush=True)
    return report
