"""Training the student: the tf.data input, the learning-rate schedule and ``fit``."""

from __future__ import annotations

from typing import Optional

import keras
import tensorflow as tf

from kd_keras import models
from kd_keras.data.epochs import prefetched
from kd_keras.distill.augment import augment_dataset, fresh_mixes, mix_batches
from kd_keras.distill.augment_check import augmentation_for
from kd_keras.distill.batchnorm import recompute_batchnorm
from kd_keras.distill.distiller import Distiller
from kd_keras.distill.losses import get_loss, loss_takes
from kd_keras.distill.store import LabelledSet
from kd_keras.errors import ConfigError
from kd_keras.strategy import compile_built

LR_SCHEDULES = ("constant", "cosine")
AUTO_EPOCHS = (50, 200)  # student.epochs = 0: at least 50 epochs, at most 200


def planned_epochs(student_config, n_images: int, least: int = AUTO_EPOCHS[0]) -> int:
    """``student.epochs``, or with 0 (auto) enough epochs over ``n_images`` for
    ``student.min_steps`` steps, within :data:`AUTO_EPOCHS` (``least`` instead of its 50,
    e.g. 1 for first students that need no more than those steps): a small training set (a
    small budget) is seen more often, at no query cost. ``student.max_steps`` (0: none) caps
    auto epochs below the 50 where a large set (e.g. with many unpaid images) would take
    more."""
    if student_config.epochs:
        return int(student_config.epochs)
    steps_per_epoch = max(1, -(-n_images // student_config.batch_size))
    wanted = -(-int(student_config.get("min_steps", 0)) // steps_per_epoch)
    epochs = int(min(AUTO_EPOCHS[1], max(least, wanted, 1)))
    cap = int(student_config.get("max_steps", 0))
    return min(epochs, max(1, cap // steps_per_epoch)) if cap else epochs


def training_dataset(labelled: LabelledSet, student_config, seed: int,
                     augment: str = "none", fresh: tuple[str, float] = ("cutmix", 0.0)
                     ) -> tf.data.Dataset:
    """(images, teacher probabilities) shuffled every epoch, batched, held or made as they
    are drawn (:mod:`kd_keras.distill.store`), augmented with the resolved ``augment``,
    mixed as ``student_config`` says and with ``fresh`` = (kind, share) fresh mixes for the
    first students to answer (:mod:`kd_keras.distill.augment`)."""
    s = student_config
    ds = labelled.dataset(s.batch_size, seed, hold_bytes=int(s.get("hold_mib", 0)) << 20)
    ds = augment_dataset(ds, augment, s.shift, seed)
    ds = mix_batches(ds, s.batch_mix, s.batch_mix_share, s.batch_mix_alpha, seed)
    return prefetched(fresh_mixes(ds, fresh[0], fresh[1], s.batch_mix_alpha, seed))


def learning_rate_schedule(student_config, steps: int):
    """The student's learning rate: constant, or cosine decay to 0 over all ``steps``."""
    if student_config.lr_schedule == "constant":
        return student_config.learning_rate
    if student_config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(student_config.learning_rate, steps)
    raise ConfigError(f"unknown student.lr_schedule {student_config.lr_schedule!r}; "
                      f"choose one of {LR_SCHEDULES}")


def student_optimizer(student_config, steps: int) -> keras.optimizers.Optimizer:
    """Adam on the configured schedule; with ``student.ema`` > 0 it also keeps a moving
    average of the weights, which ``fit`` writes into the student when training ends.

    The average's horizon, about 1 / (1 - ema) steps, is kept to at most a quarter of the
    run: Keras's average starts at the first step's weights and forgets them slowly, so a
    longer horizon keeps early, poor weights (61 % instead of 85 % measured with 0.9999 over
    3,900 steps, docs/RESULTS.md). A short run (a demo) therefore averages over fewer steps.
    """
    ema = float(student_config.get("ema", 0.0))
    if ema > 0 and ema > 1.0 - 4.0 / steps + 1e-9:  # horizon 1 / (1 - ema) > steps / 4
        capped = max(0.0, 1.0 - 4.0 / steps)
        print(f"student: student.ema={ema} averages over about {1.0 / (1.0 - ema):.0f} steps, "
              f"more than a quarter of this run's {steps}; using {capped:.4f} (about "
              f"{steps / 4:.0f} steps)", flush=True)
        ema = capped
    return keras.optimizers.Adam(learning_rate_schedule(student_config, steps),
                                 use_ema=ema > 0, ema_momentum=ema if ema > 0 else 0.99)


def new_student(ctx, model: str = "", own: bool = False) -> keras.Model:
    """An untrained student: the registered ``model``, else the config's student model, or
    the user's Keras model (``own``: itself, for the real run; else a fresh copy of it, for a
    probe or a first student). Build under the run's strategy scope."""
    config = ctx.config
    if ctx.student is None or model:
        return models.build(model or config.student.model, config.data.image_shape,
                            config.data.num_classes)
    return ctx.student if own else keras.models.clone_model(ctx.student)


def train_student(ctx, labelled: LabelledSet, *, checkpoints: bool = False,
                  callbacks: Optional[list] = None, epochs: Optional[int] = None,
                  verbose: Optional[int] = None, name: str = "student",
                  seed: Optional[int] = None, model: str = "",
                  labellers: Optional[list] = None,
                  temperature: Optional[float] = None) -> keras.Model:
    """Distills the config's student on the labelled set under the run's strategy and
    returns it.

    With ``checkpoints`` it backs up every epoch to ``WORKDIR/checkpoints`` (for a student
    ``name``d otherwise, ``checkpoints_NAME``; continued on ``--resume``) and logs to
    TensorBoard ``tb/NAME``; without, it just trains (e.g. a probe student). ``seed``
    (default ``config.seed``) sets its initial weights and the order it sees the images in.
    ``model`` names a registered model to distill instead of the student's (e.g. a first
    student that only labels unpaid images). ``labellers`` (the first students) answer
    ``unpaid.fresh`` new mixes added to every batch, and the first of them gives the
    ``unpaid.hint`` feature hint. ``temperature`` (default
    ``student.temperature``) is the loss's, e.g. the first students' ``unpaid.temperature``.
    """
    config = ctx.config
    s = config.student
    seed = int(config.seed if seed is None else seed)
    epochs = planned_epochs(s, len(labelled)) if epochs is None else epochs
    keras.utils.set_random_seed(seed)
    with ctx.strategy.scope():
        student = new_student(ctx, model, own=checkpoints)
        temperature = float(s.temperature if temperature is None else temperature)
        loss = get_loss(s.loss, temperature, label_smoothing=s.label_smoothing)
        distiller = Distiller(student, loss=loss, temperature=temperature,
                              labellers=labellers or (), hint=float(config.unpaid.hint))
        steps = epochs * -(-len(labelled) // s.batch_size)
        compile_built(distiller, student_optimizer(s, steps), jit_compile=bool(s.jit_compile),
                      steps_per_execution=int(s.steps_per_execution))
    cbs = list(callbacks or [])
    if checkpoints:
        folder = "checkpoints" if name == "student" else f"checkpoints_{name}"
        if not ctx.resume:
            ctx.workdir.remove(folder)  # only ever one a kd_keras run made
        cbs = [keras.callbacks.BackupAndRestore(ctx.workdir.claim(folder),
                                                delete_checkpoint=True),
               keras.callbacks.TensorBoard(ctx.workdir.join("tb", name))] + cbs
    model_name = model or (s.model if ctx.student is None else student.name)
    augment = augmentation_for(config, labelled)
    loss_name = f"{s.loss} T={temperature:g}" if loss_takes(s.loss, "temperature") else s.loss
    print(f"student: training {model_name} on {len(labelled)} images for {epochs} epochs "
          f"(loss {loss_name}, augment {augment}, {ctx.strategy.num_replicas_in_sync} "
          f"replica(s))", flush=True)
    fresh = (config.unpaid.generator, float(config.unpaid.fresh) if labellers else 0.0)
    if fresh[1]:
        print(f"student: {fresh[1]:g} x each batch of new {fresh[0]} mixes added, answered "
              f"by {len(labellers)} first students", flush=True)
    if distiller.hint:
        print(f"student: feature hint from the first first student's last hidden layer, "
              f"weight {distiller.hint.weight:g}", flush=True)
    dataset = training_dataset(labelled, s, seed, augment, fresh)
    history = distiller.fit(dataset, epochs=epochs, callbacks=cbs,
                            verbose=ctx.verbosity() if verbose is None else verbose, shuffle=False)
    used = recompute_batchnorm(student, labelled.sample_batches(s.batch_size, int(s.bn_batches),
                                                                seed))
    if used and verbose != 0:
        print(f"student: BatchNorm statistics recomputed for the final weights over {used} "
              f"batches of {s.batch_size} training images", flush=True)
    if checkpoints:
        ctx.history = history
    return student
