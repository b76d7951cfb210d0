"""The tf.data labelling pipeline: images are generated on the fly, sent to the teacher in
large batches (through the Teacher wrapper: budget, cache, retries) and prefetched, so
generation and querying overlap. Every command that buys answers labels through here."""

from __future__ import annotations

import time
from typing import Optional

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

    def ask_encoded(x):  # the images as the teacher decoded them, and its answers
        try:
            seen, probs = teacher.query_seen(x)
            return seen.astype(np.float32), probs
        except Exception as e:
            raised.append(e)
            raise

    def add_answers(x):
        if teacher.encoding != "none":
            seen, probs = tf.numpy_function(ask_encoded, [x], (tf.float32, tf.float32),
                                            stateful=True)
            x = tf.ensure_shape(seen, x.shape)
        else:
            probs = tf.numpy_function(ask, [x], tf.float32, stateful=True)
        return x, tf.ensure_shape(probs, [None, teacher.num_classes])

    ds = images.map(add_answers, num_parallel_calls=parallel, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE), raised


def collect(labelled: tf.data.Dataset, raised: list, total: int, what: str,
            teacher: Teacher, keep_images: bool = True) -> tuple[Optional[np.ndarray], np.ndarray]:
    """Runs the pipeline to the end, with progress, into (images, probabilities) arrays;
    without ``keep_images`` the images are not gathered (None is returned for them)."""
    xs, ys, done, start, last = [], [], 0, time.time(), 0.0
    try:
        for x, y in labelled:
            if keep_images:
                xs.append(x.numpy())
            ys.append(y.numpy())
            done += len(ys[-1])
            if time.time() - last > 5 or done == total:
                last = time.time()
                print(f"{what}: {done}/{total} labelled (teacher sent {teacher.stats.sent}, "
                      f"cache hits {teacher.stats.cache_hits}, {last - start:.1f}s)", flush=True)
    except (tf.errors.OpError, StopIteration):
        if raised:
            raise raised[0] from None
        raise
    if not ys:
        return (np.zeros((0,), np.float32) if keep_images else None,
                np.zeros((0, teacher.num_classes), np.float32))
    return (np.concatenate(xs) if keep_images else None), np.concatenate(ys)


def label_arrays(images: np.ndarray, teacher: Teacher, what: str,
                 batch_size: int = 1024) -> np.ndarray:
    """Teacher probabilities for in-memory images, through the same pipeline. The images
    are read batch by batch (uint8 or float), never copied whole nor gathered again."""
    return collect(*label_batches(_batched(images, batch_size), teacher), total=len(images),
                   what=what, teacher=teacher, keep_images=False)[1]


def _batched(images: np.ndarray, batch_size: int) -> tf.data.Dataset:
    """In-memory images (uint8 or float) as float32 batches, read slice by slice: no copy of
    the whole set."""
    def batches():
        for i in range(0, len(images), batch_size):
            yield np.asarray(images[i:i + batch_size], np.float32)

    return tf.data.Dataset.from_generator(
        batches, output_signature=tf.TensorSpec((None, *images.shape[1:]), tf.float32))


def label_seen(images: np.ndarray, teacher: Teacher, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(images as the teacher saw them, its probabilities): the images themselves unless it
    takes them encoded (PNG or JPEG: then the decoded pixels, for the student to train on)."""
    if teacher.encoding == "none":
        return images, label_arrays(images, teacher, what)
    return collect(*label_batches(_batched(images, 1024), teacher), total=len(images),
                   what=what, teacher=teacher)


def label_candidates(candidates, teacher: Teacher, what: str,
                     batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Makes and labels synthetic candidates (a :class:`kd_keras.synthesis.Candidates`)."""
    return collect(*label_batches(candidates.dataset(batch_size), teacher), total=len(candidates),
                   what=what, teacher=teacher)
