"""Supervised training of a classifier on labelled images (teachers and baselines)."""

from __future__ import annotations

from typing import Optional

import keras
import tensorflow as tf

from kd_keras import data, models
from kd_keras.context import RunContext
from kd_keras.distill.evaluation import accuracy, predict_logits
from kd_keras.data import ImageSet
from kd_keras.errors import ConfigError
from kd_keras.export import export_classifier
from kd_keras.workdir import Workdir


def train_classifier(model_name: str, train: ImageSet, *, epochs: int, batch_size: int,
                     learning_rate: float, seed: int = 0,
                     strategy: Optional[tf.distribute.Strategy] = None,
                     callbacks: Optional[list] = None,
                     validation: Optional[ImageSet] = None, augment: str = "none",
                     shift: float = 0.1, lr_schedule: str = "constant") -> keras.Model:
    """Trains ``model_name`` on labelled images with cross-entropy; returns the logits model.

    ``augment`` (:data:`kd_keras.distill.augment.AUGMENTATIONS`) and ``lr_schedule``
    (constant or cosine) are what a CIFAR-sized teacher needs to reach its accuracy."""
    from kd_keras.data.epochs import epoch_batches, prefetched
    from kd_keras.distill.augment import augment_dataset

    if train.labels is None:
        raise ConfigError(f"{train.name} has no labels; a supervised model needs them")
    keras.utils.set_random_seed(seed)
    strategy = strategy or tf.distribute.get_strategy()
    steps = epochs * -(-len(train) // batch_size)
    rate = learning_rate if lr_schedule == "constant" else \
        keras.optimizers.schedules.CosineDecay(learning_rate, steps)
    with strategy.scope():
        model = models.build(model_name, train.images.shape[1:], train.num_classes)
        model.compile(optimizer=keras.optimizers.Adam(rate),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
    val = (validation.images, validation.labels) if validation is not None else None
    batches = augment_dataset(epoch_batches((train.images, train.labels), batch_size, seed),
                              augment, shift, seed)
    model.fit(prefetched(batches), epochs=epochs, validation_data=val,
              callbacks=callbacks or [], verbose=RunContext.verbosity(), shuffle=False)
    return model


def train_teacher(config, workdir: str | Workdir,
                  strategy: Optional[tf.distribute.Strategy] = None) -> dict:
    """Trains the config's teacher on its labelled set, exports it, and reports accuracy.

    Writes ``workdir/teacher/`` (SavedModel answering probabilities), ``workdir/teacher.keras``,
    TensorBoard logs under ``workdir/tb/teacher`` and returns ``{"test_accuracy": ...}``.
    """
    wd = workdir if isinstance(workdir, Workdir) else Workdir(workdir)
    wd.check_outputs(["teacher", "teacher.keras", "tb"])
    shape, seed = config.data.image_shape, config.seed
    data_dir = config.data.data_dir or None
    train = data.load(config.data.train, shape, seed=seed, data_dir=data_dir)
    test = data.load(config.data.test, shape, seed=seed, data_dir=data_dir)
    print(f"teacher: training {config.teacher.model} on {len(train)} images of "
          f"{config.data.train} for {config.teacher.epochs} epochs", flush=True)
    wd.claim("tb")
    tb = keras.callbacks.TensorBoard(wd.join("tb", "teacher"))
    model = train_classifier(config.teacher.model, train, epochs=config.teacher.epochs,
                             batch_size=config.teacher.batch_size,
                             learning_rate=config.teacher.learning_rate, seed=seed,
                             strategy=strategy, callbacks=[tb],
                             augment=config.teacher.augment, shift=config.teacher.shift,
                             lr_schedule=config.teacher.lr_schedule)
    test_accuracy = accuracy(predict_logits(model, test.images), test.labels)
    path = export_classifier(model, wd, "teacher")
    print(f"teacher: test accuracy {test_accuracy:.4f} on {config.data.test}; exported to "
          f"{path}", flush=True)
    return {"test_accuracy": test_accuracy, "savedmodel": path}
