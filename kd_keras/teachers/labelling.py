"""The tf.data labelling pipeline: images are generated on the fly, sent to the teacher in
large batches (through the Teacher wrapper: budget, cache, retries) and prefetched, so
generation and querying overlap. Every command that buys answers labels through here."""

from __future__ import annotations

import time
from typing import Optional

import numpy as np
import tensorflow as tf

from kd_keras.data.rows import ImageRows, NpyWriter, quantize, to_uint8, unit_float
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
    return ds.prefetch(2), raised  # a fixed depth: large photos stay a few batches


BATCH_BYTES = 64 << 20  # at most about this much float32 image data in one labelling batch


def batch_for(image_shape, wanted: int) -> int:
    """``wanted`` images per labelling batch, fewer for large images (at most
    :data:`BATCH_BYTES` of float32 pixels), so memory does not grow with the image size."""
    per_image = 4 * int(np.prod([int(d) for d in image_shape]))
    return int(max(1, min(wanted, BATCH_BYTES // max(1, per_image))))


class ImageSink:
    """Where labelled images go as they are answered: rows of one uint8 array (8-bit
    images, exactly) in memory or, with ``path``, a ``.npy`` file written batch by batch
    through ``tf.io.gfile`` and read back as a memory map. Nothing of the whole set is
    gathered twice."""

    def __init__(self, total: int, shape, path: Optional[str] = None):
        shape = (int(total), *(int(d) for d in shape))
        self.done = 0
        self.writer = NpyWriter(path, np.uint8, shape) if path else None
        self.array = None if path else np.empty(shape, np.uint8)

    def write(self, images: np.ndarray) -> None:
        u8 = to_uint8(images)
        if not np.array_equal(unit_float(u8), images):  # quantised before querying, always
            raise ValueError("ImageSink stores 8-bit images only; quantise before querying")
        if self.writer is None:
            self.array[self.done:self.done + len(u8)] = u8
        else:
            self.writer.write(u8)
        self.done += len(u8)

    def rows(self) -> ImageRows:
        if self.writer is None:
            return ImageRows(self.array[:self.done])
        return ImageRows.from_file(self.writer.close())


def collect(labelled: tf.data.Dataset, raised: list, total: int, what: str,
            teacher: Teacher, sink: Optional[ImageSink] = None) -> np.ndarray:
    """Runs the pipeline to the end, with progress, and returns the probabilities; the
    images go to ``sink`` if one is given (else they are not gathered)."""
    ys, done, start, last = [], 0, time.time(), 0.0
    try:
        for x, y in labelled:
            if sink is not None:
                sink.write(x.numpy())
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
    return np.concatenate(ys) if ys else np.zeros((0, teacher.num_classes), np.float32)


def label_arrays(images: np.ndarray, teacher: Teacher, what: str,
                 batch_size: int = 1024) -> np.ndarray:
    """Teacher probabilities for in-memory images, through the same pipeline. The images
    are read batch by batch (uint8 or float), never copied whole nor gathered again."""
    return collect(*label_batches(_batched(images, batch_for(images.shape[1:], batch_size)),
                                  teacher), total=len(images), what=what, teacher=teacher)


def _batched(images: np.ndarray, batch_size: int) -> tf.data.Dataset:
    """In-memory images (uint8 or float) as float32 batches in [0, 1], read slice by slice:
    no copy of the whole set."""
    def batches():
        for i in range(0, len(images), batch_size):
            yield unit_float(images[i:i + batch_size])

    return tf.data.Dataset.from_generator(
        batches, output_signature=tf.TensorSpec((None, *images.shape[1:]), tf.float32))


def label_seen(images: np.ndarray, teacher: Teacher, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(images as the teacher saw them, its probabilities): the images themselves unless it
    takes them encoded (PNG or JPEG: then the decoded pixels, as uint8, for the student to
    train on)."""
    if teacher.encoding == "none":
        return images, label_arrays(images, teacher, what)
    sink = ImageSink(len(images), images.shape[1:])
    batches = _batched(images, batch_for(images.shape[1:], 1024))
    probs = collect(*label_batches(batches, teacher), total=len(images),
                    what=what, teacher=teacher, sink=sink)
    return sink.rows().images, probs


def label_candidates(candidates, teacher: Teacher, what: str,
                     batch_size: int = 1024, store: Optional[str] = None
                     ) -> tuple:
    """Makes and labels synthetic candidates; returns (the candidates as the student will
    see them, the teacher's probabilities).

    Exact candidates sent as they are stay a recipe (no image is kept). Others (a network's
    samples, or images the teacher takes encoded) are quantised to 8 bits before they are
    sent and kept as uint8 rows, in the ``store`` file if given (else in memory): the
    student trains on exactly the pixels the teacher answered for."""
    from kd_keras.synthesis.base import ArrayCandidates  # synthesis labels through here

    images = candidates.dataset(batch_size)
    images = candidates.dataset(batch_for(_shape(images), batch_size))
    if candidates.exact and teacher.encoding == "none":
        return candidates, collect(*label_batches(images, teacher), total=len(candidates),
                                   what=what, teacher=teacher)
    sink = ImageSink(len(candidates), _shape(images), store)
    probs = collect(*label_batches(images.map(quantize), teacher), total=len(candidates),
                    what=what, teacher=teacher, sink=sink)
    return ArrayCandidates(sink.rows()), probs


def _shape(images: tf.data.Dataset) -> tuple:
    shape = images.element_spec.shape[1:]
    if not shape.is_fully_defined():
        raise ValueError(f"candidate images need a known shape, got {shape}")
    return tuple(shape)
