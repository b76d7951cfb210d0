"""Building the labelled training set: the real images labelled first, each generator
prepared and its images chosen and labelled, or (a worker of a multi-worker run) the set
the chief published, read through ``tf.io.gfile``."""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from kd_keras import synthesis
from kd_keras.context import RunContext
from kd_keras.data.rows import ImageRows
from kd_keras.distill.augment_check import check_augmentations
from kd_keras.distill.plan import plan
from kd_keras.distill.store import INDEX, LabelledSet, real_part
from kd_keras.distill.student import train_student
from kd_keras.errors import DataError
from kd_keras.strategy import chief_watch
from kd_keras.synthesis.selection import choose_and_label
from kd_keras.teachers.labelling import label_seen

PARTS = "parts"  # WORKDIR/parts/: images stored once (samples of a network, decoded JPEGs)
SHARED_COPY = "shared_set"  # WORKDIR/shared_set/: a worker's copy of the chief's files


def build_training_set(ctx: RunContext) -> tuple[LabelledSet, ImageRows]:
    """(the labelled set, the real images as the teacher saw them): the real images and
    each generator's, labelled (see the module doc)."""
    config, teacher, unlabeled = ctx.config, ctx.teacher, ctx.unlabeled
    repeat = int(config.student.get("real_repeat", 1))
    if config.student.targets == "true_labels":  # the "student alone" reference
        if unlabeled.labels is None:
            raise DataError(f"student.targets=true_labels needs labels; {unlabeled.name} has none")
        real = ImageRows(unlabeled.images)
        return LabelledSet({"real": real_part(real, np.eye(
            config.data.num_classes, dtype=np.float32)[unlabeled.labels], repeat)}), real
    grid = config.synthesis.grid_size
    sources, generators, counts = plan(config, len(unlabeled))
    with ctx.stage("label_real"):  # encoded for the teacher: the student sees its pixels
        seen, real_probs = label_seen(unlabeled.images, teacher, "real images")
    real = ImageRows(seen)
    ctx.real, ctx.real_probs = real, real_probs
    real_set = LabelledSet({"real": real_part(real, real_probs, repeat)})
    ctx.log.grid("samples/real", real.rows(np.arange(min(len(real), grid * grid))), grid)
    agreement, copies = check_augmentations(ctx, real, real_probs)
    for name, generator in generators.items():
        if counts[name]:
            generator.prepare(ctx, real, real_probs)
    probe = lambda labelled: train_student(ctx, labelled,  # noqa: E731
                                           epochs=config.selection.probe_epochs, verbose=0)
    parts = choose_and_label(ctx, real_set, generators, counts, probe,
                             lambda name: stored_part(ctx, name))
    for name, part in parts.items():
        shown = min(len(part), grid * grid)
        ctx.log.grid(f"samples/{name}", LabelledSet({name: part}).images(np.arange(shown)), grid)
    ctx.log.scalar("teacher/queries_sent", teacher.paid, 0)
    kept = real_set.parts if synthesis.REAL in sources else {}
    return LabelledSet({**kept, **copies, **parts}, agreement), real


def stored_part(ctx: RunContext, name: str) -> str:
    """The file a part's stored images go to: ``WORKDIR/parts/NAME.npy``."""
    folder = ctx.workdir.claim(PARTS)
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f"{name}.npy")


def wait_for(shared_dir: str, wait_seconds: float,
             chief_gone: Optional[Callable[[], None]] = None) -> None:
    """Waits up to ``wait_seconds`` for the chief's labelled set to appear (``chief_gone``,
    if given, raises once the chief is known to be gone)."""
    path = f"{shared_dir.rstrip('/')}/{INDEX}"
    deadline = time.time() + wait_seconds
    while not tf.io.gfile.exists(path):
        if time.time() > deadline:
            raise DataError(f"waited {wait_seconds:.0f}s for the chief worker's training set "
                            f"at {path}; do all workers give the same --shared_dir?")
        if chief_gone is not None:
            chief_gone()
        time.sleep(1.0)
    print(f"training set: reading the chief's labelled set from {shared_dir}", flush=True)


def training_set(ctx: RunContext) -> LabelledSet:
    """Builds the labelled training set, or (a non-chief worker with a shared folder) reads
    the one the chief published. With a shared folder only the chief builds it, so its CVAE
    and probe train on this process alone (no collective ops for the others to join)."""
    if ctx.shared_dir and not ctx.chief:
        wait_for(ctx.shared_dir, ctx.wait_seconds, chief_watch(ctx.strategy))
        labelled, ctx.real, ctx.real_probs = LabelledSet.read(
            ctx.shared_dir, ctx.config, ctx.workdir.claim(SHARED_COPY))
        return labelled
    local = dataclasses.replace(ctx, strategy=tf.distribute.get_strategy()) \
        if ctx.shared_dir else ctx
    labelled, real = build_training_set(local)
    ctx.real, ctx.real_probs = local.real, local.real_probs  # unpaid images are made from them
    if ctx.shared_dir:
        print(f"training set: published to "
              f"{labelled.publish(ctx.shared_dir, real, local.real_probs)}", flush=True)
    return labelled
