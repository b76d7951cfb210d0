"""The Python API in Keras's manner: connect to a teacher, distill a student, get it back.

    import keras, kd_keras
    teacher = kd_keras.connect("http://host:8501/v1/models/clf", num_classes=10,
                               budget=10_000, cache="answers.sqlite")
    student = keras.Sequential([...])            # a logits model, or a model name
    result = kd_keras.distill_student(student, teacher, images="photos/", workdir="runs/photos")
    result.student.export("student/")            # and result.report, result.history

No config object is needed (one is made from the images and the student); one can still
be passed, and every bin command runs on the same functions.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

import keras
import numpy as np
import tensorflow as tf

from kd_keras import data
from kd_keras.config import base_config
from kd_keras.data.rows import compact
from kd_keras.distill.run import RunResult, fsbbt
from kd_keras.errors import DataError
from kd_keras.teachers import Teacher, make_teacher

Images = Union[str, np.ndarray, tf.data.Dataset, data.ImageSet]


def connect(target: Union[str, Callable[[np.ndarray], Any]], num_classes: int, *,
            output: str = "probs", budget: Optional[int] = None, cache: Optional[str] = None,
            image_shape: Optional[Sequence[int]] = None, token_env: Optional[str] = None,
            signature: Optional[str] = None, timeout: float = 30.0, batch_size: int = 256,
            concurrency: int = 4, max_tries: int = 5,
            class_names: Union[str, Sequence[str], None] = None) -> Teacher:
    """A black-box teacher: a spec string (``savedmodel:DIR``, ``keras:FILE``, a TF Serving
    REST or gRPC URL, ``hf+https://…`` with ``class_names``: a file or the names in index
    order) or a Python function ``images -> answers``, with its answer cache
    (an SQLite file; None keeps answers in memory) and budget (most answers ever paid).
    Built as the commands build theirs (a fixed-size SavedModel gets resized images)."""
    return make_teacher(target, num_classes, output=output, budget=budget, cache=cache,
                        image_shape=image_shape, token_env=token_env, signature=signature,
                        timeout=timeout, batch_size=batch_size, concurrency=concurrency,
                        max_tries=max_tries, class_names=class_names)


# What distill_student gives back: the trained student (logits), the report written to
# workdir/report.json and the student's training History; the commands' result type.
DistillResult = RunResult


def as_image_set(images: Images, image_shape: Optional[Sequence[int]], seed: int = 0) -> data.ImageSet:
    """Images as a folder path or source spec, an array [n, h, w(, c)] (uint8 or [0, 1]
    floats), a ``tf.data.Dataset`` of images (or (image, label) pairs) or an ImageSet."""
    if isinstance(images, data.ImageSet):
        return images
    if isinstance(images, str):
        spec = images if ":" in images.split("/")[0] else f"folder:{images}"
        return data.load(spec, image_shape, seed=seed, compact=True)
    if isinstance(images, tf.data.Dataset):  # batch by batch into the compact store
        batches = []
        for b in images.as_numpy_iterator():
            b = b[0] if isinstance(b, tuple) else b
            b = data.sources.with_channel_axis(b if b.ndim == 4 else b[None], "images dataset")
            batches.append(compact(b if b.dtype == np.uint8
                                   else data.to_float_images(b, "images dataset")))
        if not batches:
            raise DataError("the images dataset is empty")
        if len({b.dtype for b in batches}) > 1:  # some batches not 8-bit: all as floats
            batches = [data.to_float_images(b, "images dataset") for b in batches]
        return data.ImageSet(np.concatenate(batches), name="tf.data")
    array = np.asarray(images)
    return data.ImageSet(compact(data.sources.with_channel_axis(array, "images array")
                                 if array.dtype == np.uint8
                                 else data.to_float_images(array, "images array")), name="array")


def default_config(image_shape: Sequence[int], num_classes: int, student: str = "lenet5_half",
                   num_synthetic: int = 20000):
    """Our defaults for any images: real + CutMix images, KL at T = 2, batch 128, weight
    averaging (EMA 0.999), 50 epochs
    (more for a small training set, see ``student.min_steps``)."""
    return base_config(name="api", train="", test="", unlabeled="", image_shape=image_shape,
                       num_classes=num_classes, teacher_model="lenet5", student_model=student,
                       teacher_epochs=1, num_synthetic=num_synthetic, cvae_epochs=100,
                       cvae_likelihood="bernoulli" if image_shape[-1] == 1 else "normal")


def distill_student(student: Union[str, keras.Model], teacher: Teacher, images: Images, *,
            workdir: str, config=None, eval_images: Optional[Images] = None,
            budget: Optional[int] = None, epochs: Optional[int] = None,
            num_synthetic: Optional[int] = None, callbacks: Optional[list] = None,
            resume: bool = False, strategy: Optional[tf.distribute.Strategy] = None,
            tflite: Sequence[str] = ()) -> DistillResult:
    """Distills ``teacher`` into ``student`` from a few unlabeled ``images``.

    Args:
      student: a Keras model answering logits (trained in place), or a model name.
      teacher: from :func:`connect`; its cache makes a rerun pay for nothing twice.
      images: the user's unlabeled images (see :func:`as_image_set`).
      workdir: where the student, report, checkpoints and TensorBoard logs go.
      config: an experiment config; by default one is made for the images' shape.
      eval_images: labelled images to report on (an ImageSet or a source spec).
      budget: most training answers (default: the teacher's); the synthetic count follows.
      epochs, num_synthetic: shortcuts for ``student.epochs`` (0: auto) and
        ``synthesis.num_synthetic``.
      callbacks: Keras callbacks, called during the student's training.
      resume: continue an interrupted run in ``workdir``.
      strategy: a tf.distribute strategy; a given Keras model trains where it was built.
      tflite: TFLite students to write too (``("float", "int8")``; ``export.tflite``).
    """
    shape = (tuple(student.input_shape[1:]) if isinstance(student, keras.Model)
             else tuple(config.data.image_shape) if config is not None else None)
    real = as_image_set(images, shape)
    shape = shape or real.images.shape[1:]
    if config is None:
        config = default_config(shape, teacher.num_classes,
                                student if isinstance(student, str) else "lenet5_half")
    given = [int(b) for b in (budget, teacher.budget) if b]
    budget = min(given) if given else None  # the lower of connect()'s and this call's wins
    if config is not None:
        config = config.copy_and_resolve_references()  # the caller's config stays as it was
    with config.unlocked():
        config.data.image_shape = tuple(shape)
        config.data.num_classes = teacher.num_classes
        if isinstance(student, str):
            config.student.model = student
        if epochs is not None:
            config.student.epochs = int(epochs)
        if num_synthetic is not None:
            config.synthesis.num_synthetic, config.synthesis.fixed_count = int(num_synthetic), True
        if budget is not None:
            config.query.budget = int(budget)
        if tflite:
            config.export.tflite = ",".join(tflite)
    if budget is not None and budget != teacher.budget:
        teacher = teacher.fork(budget)  # the same teacher and cache; the caller's is unchanged
    if isinstance(student, keras.Model):  # its class count is checked with the run's
        strategy = strategy or tf.distribute.get_strategy()
    eval_set = None
    if eval_images is not None:
        eval_set = as_image_set(eval_images, shape)
    run = fsbbt(config, teacher, real.unlabeled(), eval_set, workdir, strategy, resume=resume,
                callbacks=callbacks,
                student=student if isinstance(student, keras.Model) else None)
    return run
