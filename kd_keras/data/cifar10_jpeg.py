"""CIFAR-10 (JPEG): the workplace's lossy JPEG re-encode of CIFAR-10, as ``cifar10_jpeg:SPLIT``.

The shared tarball (``../shared/data/cifar10_jpeg/cifar10_jpeg.tar.gz``, or
``$KD_KERAS_CIFAR10_JPEG_TAR``) is unpacked once into a cache folder
(``--config.data.data_dir``, else ``$KD_KERAS_CACHE``, else ``~/.cache/kd_keras``), decoded
once with Pillow in the README's order (class, then file number) and kept there as
``cifar10_jpeg/{train,test}.npz`` (uint8), checked against the README's hashes. Later runs
read the npz in a second. Call results on it "CIFAR-10 (JPEG)": the pixels are lossy.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile

import numpy as np

from kd_keras.data.sources import SHARED_DATA, SOURCES, ImageSet, _load_npz
from kd_keras.errors import DataError

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck")
# From the data's README: images per split and the first 16 hex digits of the sha256 of
# the uint8 array decoded with Pillow, sorted by class, then file number.
EXPECTED = {"train": (50000, "bf3aabd52be912da"), "test": (10000, "5a6aa8185204d80b")}
TARBALL = os.path.join(SHARED_DATA, "cifar10_jpeg", "cifar10_jpeg.tar.gz")


def cache_folder(data_dir: str | None = None) -> str:
    """Where the unpacked images and the decoded arrays live (see the module doc)."""
    root = data_dir or os.environ.get("KD_KERAS_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "kd_keras")
    return os.path.join(root, "cifar10_jpeg")


def _number(name: str) -> int:
    digits = re.sub(r"\D", "", name)
    return int(digits) if digits else -1


def _unpack(folder: str) -> None:
    tarball = os.environ.get("KD_KERAS_CIFAR10_JPEG_TAR") or TARBALL
    if not os.path.exists(tarball):
        raise DataError(f"cifar10_jpeg: the tarball {tarball} is not here; set "
                        "$KD_KERAS_CIFAR10_JPEG_TAR to its path")
    print(f"cifar10_jpeg: unpacking {tarball} into {folder} (once)", flush=True)
    partial = folder + ".unpacking"
    marker = os.path.join(partial, ".kd_keras_unpacking")
    if os.path.lexists(partial):
        if not os.path.exists(marker):  # never delete what kd_keras did not make
            raise DataError(f"cifar10_jpeg: {partial} exists and was not made by kd_keras; "
                            "move it away")
        shutil.rmtree(partial)  # our own unfinished unpacking
    os.makedirs(partial)
    open(marker, "w").close()
    with tarfile.open(tarball) as tar:
        tar.extractall(partial, filter="data")
    for split in EXPECTED:
        if not os.path.isdir(os.path.join(partial, split)):
            raise DataError(f"cifar10_jpeg: {tarball} holds no {split}/ folder")
        os.replace(os.path.join(partial, split), os.path.join(folder, split))
    shutil.rmtree(partial)  # now only our marker


def _decode(folder: str, split: str) -> str:
    """Decodes ``folder/split/<class>/*.jpg`` into ``folder/split.npz``; returns its path."""
    from PIL import Image

    count, digest = EXPECTED[split]
    images = np.empty((count, 32, 32, 3), np.uint8)
    labels = np.empty(count, np.int64)
    i = 0
    print(f"cifar10_jpeg: decoding {count:,} {split} images (once)", flush=True)
    for label, name in enumerate(CLASSES):
        directory = os.path.join(folder, split, name)
        if not os.path.isdir(directory):
            raise DataError(f"cifar10_jpeg: {directory} is missing; remove {folder} to unpack "
                            "again")
        for f in sorted(os.listdir(directory), key=_number):
            if i == count:
                raise DataError(f"cifar10_jpeg: more than {count} {split} images in {folder}")
            with Image.open(os.path.join(directory, f)) as im:
                images[i] = np.asarray(im.convert("RGB"))
            labels[i] = label
            i += 1
    found = hashlib.sha256(images[:i].tobytes()).hexdigest()[:16]
    if i != count or found != digest:
        raise DataError(f"cifar10_jpeg: {split} decodes to {i} images with sha256 {found}, "
                        f"the README says {count} and {digest}; remove {folder} to unpack again")
    path = os.path.join(folder, f"{split}.npz")
    tmp = path + ".tmp.npz"
    np.savez(tmp, x=images, y=labels)
    os.replace(tmp, path)
    return path


def load_cifar10_jpeg(split: str, data_dir: str | None = None) -> ImageSet:
    """CIFAR-10 (JPEG)'s ``train`` or ``test`` split as uint8 images and labels."""
    split = split or "train"
    if split not in EXPECTED:
        raise DataError(f"cifar10_jpeg: unknown split {split!r}; use train or test")
    folder = cache_folder(data_dir)
    path = os.path.join(folder, f"{split}.npz")
    if not os.path.exists(path):
        try:
            os.makedirs(folder, exist_ok=True)
            if not os.path.isdir(os.path.join(folder, split)):
                _unpack(folder)
            _decode(folder, split)
        except OSError as e:
            raise DataError(f"cifar10_jpeg: cannot prepare {folder}: "
                            f"{e.strerror or e}") from None
    data = _load_npz(path)
    return ImageSet(data.images, data.labels, len(CLASSES), f"cifar10_jpeg:{split}")


SOURCES.register("cifar10_jpeg", lambda args, shape, d: load_cifar10_jpeg(args, d))
