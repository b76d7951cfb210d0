"""Images held once and read by row inside tf.data: the compact store every pipeline shares.

The array (uint8 when the images are 8-bit, else float32; in memory or a ``.npy`` file
opened as a memory map) is never captured as a graph constant: batches of rows are read
through ``tf.numpy_function``, so neither the graph nor a copy grows with the data, and
20,000 photos cost their bytes once.
"""

from __future__ import annotations

import io
from typing import Sequence, Union

import numpy as np
import tensorflow as tf


def unit_float(images: np.ndarray) -> np.ndarray:
    """A batch as float32 in [0, 1]: uint8 is divided by 255 (as the sources convert),
    float32 is returned as it is."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    return images.astype(np.float32, copy=False)


def unit_float_tensor(images: tf.Tensor) -> tf.Tensor:
    """:func:`unit_float` inside a graph."""
    if images.dtype == tf.uint8:
        return tf.cast(images, tf.float32) / 255.0
    return tf.cast(images, tf.float32)


def quantize(images: tf.Tensor) -> tf.Tensor:
    """Rounds float pixels in [0, 1] to 8-bit levels, as stored images are."""
    return tf.round(images * 255.0) / 255.0


def is_8bit(images: np.ndarray) -> bool:
    """Whether float images in [0, 1] sit exactly on 8-bit levels (k / 255)."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return True
    return bool(np.all(unit_float(to_uint8(images)) == images))


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Float images in [0, 1] rounded to their nearest 8-bit level."""
    return np.round(np.asarray(images, np.float32) * 255.0).astype(np.uint8)


def compact(images: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """The images as uint8 when they are 8-bit (checked batch by batch), else as they are."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    for i in range(0, len(images), batch_size):
        if not is_8bit(images[i:i + batch_size]):
            return images
    out = np.empty(images.shape, np.uint8)
    for i in range(0, len(images), batch_size):
        out[i:i + batch_size] = to_uint8(images[i:i + batch_size])
    return out


class NpyWriter:
    """A ``.npy`` file of known dtype and shape written row block by row block through
    ``tf.io.gfile`` (local disk, GCS, HDFS) beside its place, and renamed into place when
    every row is in: a file at ``path`` is always whole."""

    def __init__(self, path: str, dtype, shape: Sequence[int]):
        self.path, self.dtype = path, np.dtype(dtype)
        self.shape, self.done = tuple(int(d) for d in shape), 0
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {
            "descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
            "shape": self.shape})
        self._file = tf.io.gfile.GFile(path + ".partial", "wb")
        self._file.write(header.getvalue())

    def write(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, self.dtype)
        if rows.shape[1:] != self.shape[1:] or self.done + len(rows) > self.shape[0]:
            raise ValueError(f"{rows.shape} rows do not fit {self.shape} at row {self.done}")
        self._file.write(rows.tobytes())
        self.done += len(rows)

    def close(self) -> str:
        """Renames the finished file into place and returns its path."""
        self._file.close()
        if self.done != self.shape[0]:
            raise ValueError(f"{self.path}: {self.done} of {self.shape[0]} rows written")
        tf.io.gfile.rename(self.path + ".partial", self.path, overwrite=True)
        return self.path


def write_npy(path: str, array: np.ndarray, block_bytes: int = 64 << 20) -> None:
    """``array`` (in memory or a memory map) as a ``.npy`` file through ``tf.io.gfile``,
    in blocks of rows: no copy of the whole array is made."""
    writer = NpyWriter(path, array.dtype, array.shape)
    step = max(1, block_bytes // max(1, array[:1].nbytes))
    for i in range(0, len(array), step):
        writer.write(array[i:i + step])
    writer.close()


class ImageRows:
    """Rows of one image array, read as float32 batches inside tf.data (module doc)."""

    def __init__(self, images: Union[np.ndarray, "np.memmap"]):
        if images.ndim != 4 or images.dtype not in (np.uint8, np.float32):
            raise ValueError(f"ImageRows holds uint8 or float32 NHWC images, got "
                             f"{images.dtype} {images.shape}")
        self.images = images

    @classmethod
    def from_file(cls, path: str) -> "ImageRows":
        """A ``.npy`` file of images, memory-mapped: rows are read from disk as needed."""
        return cls(np.load(path, mmap_mode="r", allow_pickle=False))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def shape(self) -> Sequence[int]:
        return tuple(int(d) for d in self.images.shape[1:])

    def raw(self, index: np.ndarray) -> np.ndarray:
        """The images at ``index`` as stored (uint8 or float32)."""
        return self.images[np.asarray(index, np.int64)]

    def rows(self, index: np.ndarray) -> np.ndarray:
        """The images at ``index`` (ascending reads are fastest on a memory map), float32."""
        index = np.asarray(index, np.int64)
        return unit_float(self.images[index])

    def gather(self, index: tf.Tensor) -> tf.Tensor:
        """The images at ``index`` as a float32 tensor in [0, 1], read in this process."""
        dtype = tf.uint8 if self.images.dtype == np.uint8 else tf.float32
        x = tf.numpy_function(lambda i: np.ascontiguousarray(self.images[i]),
                              [tf.cast(index, tf.int64)], dtype, stateful=False)
        return unit_float_tensor(tf.ensure_shape(x, [None, *self.shape]))


def gather(images: Union[ImageRows, tf.Tensor], index: tf.Tensor) -> tf.Tensor:
    """``images[index]`` as float32 for :class:`ImageRows` or a tensor (a batch)."""
    if isinstance(images, ImageRows):
        return images.gather(index)
    return unit_float_tensor(tf.gather(images, index))
