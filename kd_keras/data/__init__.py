"""Data sources: one spec string names images everywhere (see ``sources``)."""

from kd_keras.data import cifar10_jpeg  # noqa: F401  (registers the cifar10_jpeg source)
from kd_keras.data.idx import read_idx, write_idx
from kd_keras.data.sources import (SOURCES, ImageSet, check_image_shape, few_shot_indices,
                                   load, to_float_images)

__all__ = ["SOURCES", "ImageSet", "check_image_shape", "few_shot_indices", "load", "read_idx",
           "to_float_images", "write_idx"]
