"""Training epochs over arrays held in memory, as ``fit`` consumes them."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

PREFETCH = 2  # batches ready ahead of the step: the pipeline is cheap next to a step


def epoch_batches(arrays: tuple, batch_size: int, seed: int) -> tf.data.Dataset:
    """``arrays`` (equal first dimension) sliced, shuffled anew every epoch and batched.

    tf.data's autotuning is off (and prefetching fixed; map stages use their default
    parallelism). ``fit`` builds a new iterator every epoch, and destroying the old one
    waits for the autotuner's thread: measured 2.2-2.5 s in about one epoch of three,
    with the whole process idle, costing 10-20 % of a student run on 2 cores
    (docs/RESULTS.md, issue #11). Autotuning such a short in-memory pipeline gains nothing.
    """
    n = len(arrays[0])
    options = tf.data.Options()
    options.autotune.enabled = False
    return (tf.data.Dataset.from_tensor_slices(tuple(np.asarray(a) for a in arrays))
            .shuffle(n, seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size)
            .with_options(options))


def prefetched(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """The last stage of an epoch pipeline: a fixed prefetch (see :func:`epoch_batches`)."""
    return dataset.prefetch(PREFETCH)
