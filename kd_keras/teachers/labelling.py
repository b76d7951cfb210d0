"""The tf.data labelling pipeline: images are generated on the fly, sent to the teacher in
large batches (through the Teacher wrapper: budget, cache, retries) and prefetched, so
generation and querying overlap. Every command that buys answers labels through here."""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

from kd_keras.teachers.teacher import Teacher


def label_batches(images: tf.data.Dataset, teacher: Teacher, parallel: int = 2) -> tuple:
    """Maps batches of images to (images, teacher probabilities).

    Returns the dataset and a list that receives the first exception the teacher raised:
    TF wraps Python errors raised inside ``numpy_function``; :func:`collect` re-raises the
    original so the user sees its message, not a TF traceback.
    """
    raised: list[BaseException] = []

    def ask(x):
        try:
            return teacher.query(x)
        except Exception as e:
            raised.append(e)
            raise

    def add_answers(x):
        probs = tf.numpy_function(ask, [x], tf.float32, stateful=True)
        return x, tf.ensure_shape(probs, [None, teacher.num_classes])

    ds = images.map(add_answers, num_parallel_calls=parallel, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE), raised


def collect(labelled: tf.data.Dataset, raised: list, total: int, what: str,
            teacher: Teacher) -> tuple[np.ndarray, np.ndarray]:
    """Runs the pipeline to the end, with progress, into (images, probabilities) arrays."""
    xs, ys, done, start, last = [], [], 0, time.time(), 0.0
    try:
        for x, y in labelled:
            xs.append(x.numpy())
            ys.append(y.numpy())
            done += len(xs[-1])
            if time.time() - last > 5 or done == total:
                last = time.time()
                print(f"{what}: {done}/{total} labelled (teacher sent {teacher.stats.sent}, "
                      f"cache hits {teacher.stats.cache_hits}, {last - start:.1f}s)", flush=True)
    except (tf.errors.OpError, StopIteration):
        if raised:
            raise raised[0] from None
        raise
    if not xs:
        return (np.zeros((0,), np.float32), np.zeros((0, teacher.num_classes), np.float32))
    return np.concatenate(xs), np.concatenate(ys)


def label_arrays(images: np.ndarray, teacher: Teacher, what: str,
                 batch_size: int = 1024) -> np.ndarray:
    """Teacher probabilities for in-memory images, through the same pipeline."""
    ds = tf.data.Dataset.from_tensor_slices(images.astype(np.float32)).batch(batch_size)
    return collect(*label_batches(ds, teacher), total=len(images), what=what, teacher=teacher)[1]


def label_candidates(candidates, teacher: Teacher, what: str,
                     batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Makes and labels synthetic candidates (a :class:`kd_keras.synthesis.Candidates`)."""
    return collect(*label_batches(candidates.dataset(batch_size), teacher), total=len(candidates),
                   what=what, teacher=teacher)
