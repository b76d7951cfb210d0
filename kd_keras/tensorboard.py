"""TensorBoard helpers: image grids of samples and scalars outside ``fit``."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def image_grid(images: np.ndarray, size: int = 8) -> np.ndarray:
    """Tiles up to size*size images [n, h, w, c] into one image [1, size*h, size*w, c]."""
    images = np.asarray(images, np.float32)[: size * size]
    n, h, w, c = images.shape
    pad = np.zeros((size * size - n, h, w, c), np.float32)
    tiles = np.concatenate([images, pad]).reshape(size, size, h, w, c)
    return tiles.transpose(0, 2, 1, 3, 4).reshape(1, size * h, size * w, c)


class SummaryLog:
    """A TensorBoard writer for one folder: ``scalar`` and ``grid`` (of sample images)."""

    def __init__(self, logdir: str):
        self.writer = tf.summary.create_file_writer(logdir)

    def scalar(self, name: str, value: float, step: int) -> None:
        with self.writer.as_default():
            tf.summary.scalar(name, value, step=step)
        self.writer.flush()

    def grid(self, name: str, images: np.ndarray, size: int = 8, step: int = 0) -> None:
        if len(images):
            with self.writer.as_default():
                tf.summary.image(name, image_grid(images, size), step=step)
            self.writer.flush()
