"""One ``--strategy`` flag to choose how training is distributed."""

from __future__ import annotations

import tensorflow as tf

STRATEGIES = ("mirrored", "multi_worker", "default")


def get_strategy(name: str = "mirrored") -> tf.distribute.Strategy:
    """``mirrored``: all visible local devices; ``multi_worker``: workers from TF_CONFIG;
    ``default``: no distribution (the current default strategy)."""
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "default":
        return tf.distribute.get_strategy()
    raise ValueError(f"unknown strategy {name!r}; choose one of {STRATEGIES}")
