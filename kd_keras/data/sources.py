"""Image sources named by one spec string, e.g. ``fashion_mnist:train[:2000]``.

Grammar: ``KIND:ARGS[SELECTOR]`` where KIND is one of ``fashion_mnist``, ``mnist``,
``cifar10_jpeg`` (:mod:`kd_keras.data.cifar10_jpeg`), ``digits``, ``tfds``, ``folder`` or
``npz``, and the optional SELECTOR is

* ``[:N]``  — a few-shot subset of N images, drawn reproducibly by ``seed`` and
  class-balanced when the source has labels;
* ``[A:B]`` — the contiguous slice A..B of the source (A > 0), as in TFDS.
"""

from __future__ import annotations

import dataclasses
import os
import re
import zipfile
from typing import Optional, Sequence

import numpy as np

from kd_keras.data.idx import read_idx
from kd_keras.errors import DataError
from kd_keras.registry import Registry

DEFAULT_IDX_DIRS = {
    "fashion_mnist": ("KD_KERAS_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"),
    "mnist": ("KD_KERAS_MNIST_DIR", "/usr/share/datasets/mnist"),
}
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_SPEC = re.compile(r"^(?P<body>.*?)(?:\[(?P<start>\d*):(?P<stop>\d*)\])?$")


@dataclasses.dataclass
class ImageSet:
    """Images as float32 NHWC in [0, 1], with integer labels when the source has them.

    ``load`` returns it so; inside ``load`` a loader may hand over the source's own dtype
    (uint8), converted once after the selector."""

    images: np.ndarray
    labels: Optional[np.ndarray] = None
    num_classes: Optional[int] = None
    name: str = ""

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def unlabeled(self) -> "ImageSet":
        """The same images without labels (what a user of a black-box teacher holds)."""
        return ImageSet(self.images, None, self.num_classes, self.name)


def with_channel_axis(images: np.ndarray, where: str) -> np.ndarray:
    """Images shaped [n, height, width, channels]: grey [n, height, width] gains an axis."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise DataError(f"{where}: expected images shaped [n, height, width(, channels)], "
                        f"got shape {images.shape}")
    return images


def to_float_images(images: np.ndarray, where: str) -> np.ndarray:
    """Converts uint8 or [0, 1] float images to float32 NHWC, adding a channel axis.

    Float32 input is returned as it is (checked, not copied)."""
    images = with_channel_axis(images, where)
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    images = images.astype(np.float32, copy=False)
    if images.size and (not np.all(np.isfinite(images)) or images.min() < 0 or images.max() > 1):
        raise DataError(f"{where}: float images must hold finite values in [0, 1] "
                        f"(or be uint8 0..255); found range [{images.min()}, {images.max()}]")
    return images


def check_image_shape(images: np.ndarray, expected: Sequence[int], where: str) -> None:
    """Raises a DataError unless images are shaped [n, *expected]."""
    if tuple(images.shape[1:]) != tuple(expected):
        raise DataError(f"{where}: images have shape {tuple(images.shape[1:])}, "
                        f"the model expects {tuple(expected)}")


def few_shot_indices(n: int, size: int, labels: Optional[np.ndarray], seed: int) -> np.ndarray:
    """Indices of a reproducible subset of ``size`` items, class-balanced when labelled."""
    if size > n:
        raise DataError(f"asked for {size} images but the source holds only {n}")
    rng = np.random.default_rng(seed)
    if labels is None:
        return np.sort(rng.permutation(n)[:size])
    classes = np.unique(labels)
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    quota = np.full(len(classes), size // len(classes))
    quota[rng.permutation(len(classes))[: size % len(classes)]] += 1
    # A class too small for its quota gives its share to the others.
    chosen, spare = [], []
    for idx, q in zip(per_class, quota):
        chosen.append(idx[:q])
        spare.append(idx[q:])
    missing = size - sum(len(c) for c in chosen)
    if missing:
        pool = rng.permutation(np.concatenate(spare))
        chosen.append(pool[:missing])
    return np.sort(np.concatenate(chosen))


# The workplace's shared data beside the repository (``../shared/data``): MNIST as
# ``mnist/{train,test}.npz`` (uint8 ``x``, ``y``), read when no IDX folder is found.
SHARED_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), os.pardir, "shared", "data")


def _load_idx(kind: str, split: str, data_dir: Optional[str]) -> ImageSet:
    env, default = DEFAULT_IDX_DIRS[kind]
    directory = data_dir or os.environ.get(env) or default
    if split not in _IDX_FILES:
        raise DataError(f"{kind}: unknown split {split!r}; use one of {sorted(_IDX_FILES)}")
    shared = os.path.join(SHARED_DATA, kind, f"{split}.npz")
    if not data_dir and not os.environ.get(env) and not os.path.isdir(directory) and \
            os.path.exists(shared):
        found = _load_npz(shared)
        return ImageSet(found.images, found.labels, 10, f"{kind}:{split}")
    paths = []
    for stem in _IDX_FILES[split]:
        for candidate in (stem + ".gz", stem):
            if os.path.exists(os.path.join(directory, candidate)):
                paths.append(os.path.join(directory, candidate))
                break
        else:
            hint = (" (install it with: apt-get install -y dataset-fashion-mnist)"
                    if kind == "fashion_mnist" else "")
            raise DataError(f"{kind}: {stem}[.gz] not found in {directory}{hint}; "
                            f"set ${env} or --data_dir to another folder")
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if len(images) != len(labels):
        raise DataError(f"{kind}:{split}: {len(images)} images but {len(labels)} labels")
    return ImageSet(images, labels.astype(np.int64), 10, f"{kind}:{split}")  # uint8 until load


def _load_digits(split: str) -> ImageSet:
    """scikit-learn's 8x8 digits, split 80/20 (stratified, fixed seed) into train/test."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise DataError("digits: needs scikit-learn (pip install scikit-learn)") from None
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    y = digits.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    splits = {"train": (xtr, ytr), "test": (xte, yte)}
    if split not in splits:
        raise DataError(f"digits: unknown split {split!r}; use train or test")
    return ImageSet(*splits[split], num_classes=10, name=f"digits:{split}")


def _load_tfds(args: str, data_dir: Optional[str]) -> ImageSet:
    name, _, split = args.partition(":")
    if not name or not split:
        raise DataError(f"tfds source must look like tfds:NAME:SPLIT, got tfds:{args}")
    import tensorflow_datasets as tfds

    try:
        ds, info = tfds.load(name, split=split, data_dir=data_dir, with_info=True)
    except Exception as e:  # TFDS raises many types; the message is what matters.
        raise DataError(f"tfds:{name}:{split}: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    image_key = next((k for k in ("image", "img") if k in info.features), None)
    if image_key is None:
        raise DataError(f"tfds:{name} has no image feature (features: {list(info.features)})")
    has_label = "label" in info.features
    images, labels = [], []
    for batch in tfds.as_numpy(ds.batch(1024)):
        images.append(batch[image_key])
        if has_label:
            labels.append(batch["label"])
    if not images:
        raise DataError(f"tfds:{name}:{split} is empty")
    num_classes = info.features["label"].num_classes if has_label else None
    return ImageSet(np.concatenate(images),
                    np.concatenate(labels).astype(np.int64) if has_label else None,
                    num_classes, f"tfds:{name}:{split}")


def _decode_image(path: str, shape: Optional[Sequence[int]]) -> np.ndarray:
    import tensorflow as tf

    try:  # decoded as stored (an animated GIF: its first frame), then converted, since
        # decoders refuse some conversions themselves (CMYK JPEG or GIF to grayscale)
        image = tf.io.decode_image(tf.io.read_file(path), channels=0, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as e:
        detail = re.sub(r"^\{\{[^}]*\}\}\s*", "", e.message).strip().splitlines()
        raise DataError(f"cannot decode image {path}: "
                        f"{detail[0] if detail else 'not an image'}") from None
    image = tf.image.convert_image_dtype(image, tf.float32)
    if image.shape[-1] in (2, 4):  # gray + alpha, RGBA: the alpha channel is dropped
        image = image[..., :image.shape[-1] - 1]
    if shape and shape[2] == 1 and image.shape[-1] == 3:
        image = tf.image.rgb_to_grayscale(image)
    elif shape and shape[2] == 3 and image.shape[-1] == 1:
        image = tf.image.grayscale_to_rgb(image)
    if shape:
        image = tf.image.resize(image, shape[:2], antialias=True)
    return np.clip(image.numpy(), 0.0, 1.0)


def _visible(names: list[str]) -> list[str]:
    """Entries not hidden (``.ipynb_checkpoints``, ``.DS_Store`` …), sorted."""
    return sorted(n for n in names if not n.startswith("."))


def _load_folder(path: str, shape: Optional[Sequence[int]]) -> ImageSet:
    """Images in ``path`` (unlabelled) or in its class sub-folders (labelled).

    Hidden entries are skipped; loose images beside class folders are an error (they
    could not be labelled, and dropping them silently would surprise). Images are decoded
    one by one into one preallocated uint8 array (resized images rounded to 8-bit levels,
    as stored photos are), so peak memory stays near the result's compact size.
    """
    if not os.path.isdir(path):
        raise DataError(f"folder source: {path} is not a directory")
    is_image = lambda p: p.lower().endswith(_IMAGE_EXTENSIONS)  # noqa: E731
    entries = _visible(os.listdir(path))
    subdirs = [d for d in entries if os.path.isdir(os.path.join(path, d)) and not is_image(d)]
    loose = [f for f in entries if is_image(f)]
    files, labels = [], []
    for label, sub in enumerate(subdirs):
        inside = _visible(os.listdir(os.path.join(path, sub)))
        nested = [d for d in inside if os.path.isdir(os.path.join(path, sub, d))]
        if nested:
            raise DataError(f"folder source {path}: {sub}/ holds folders ({', '.join(nested[:3])}"
                            f"{' …' if len(nested) > 3 else ''}); class folders hold images "
                            "only, one level deep: move their images up or give the deeper "
                            "folder as the source")
        for f in inside:
            if is_image(f):
                files.append(os.path.join(path, sub, f))
                labels.append(label)
    labelled = bool(files)
    if labelled and loose:
        raise DataError(f"folder source {path}: has class folders and also loose images "
                        f"({', '.join(loose[:3])}{' …' if len(loose) > 3 else ''}); move them "
                        "into a class folder or out of the source")
    if not labelled:
        files = [os.path.join(path, f) for f in loose]
    if not files:
        raise DataError(f"folder source: no images ({', '.join(_IMAGE_EXTENSIONS)}) in {path}")
    for f in files:
        if not os.path.isfile(f):
            raise DataError(f"folder source: {f} is not an image file")
    from kd_keras.data.rows import to_uint8

    first = _decode_image(files[0], shape)
    out = np.empty((len(files), *first.shape), np.uint8)
    out[0] = to_uint8(first)
    for i, f in enumerate(files[1:], start=1):
        im = _decode_image(f, shape)
        if im.shape != first.shape:
            raise DataError(f"folder source: {f} has shape {im.shape}, {files[0]} has "
                            f"{first.shape}; give the model's image shape so images are resized")
        out[i] = to_uint8(im)
    return ImageSet(out, np.asarray(labels, np.int64) if labelled else None,
                    len(subdirs) if labelled else None, f"folder:{path}")


def _load_npz(path: str) -> ImageSet:
    if not os.path.exists(path):
        raise DataError(f"npz source: file not found: {path}")
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except OSError as e:
        raise DataError(f"npz source: cannot read {path}: {e.strerror}") from None
    if not magic.startswith(b"PK") and magic != b"\x93NUMPY":
        raise DataError(f"npz source: {path} is not an npz archive (it is not a zip file); "
                        "save with numpy.savez(path, images=...)")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"npz source: cannot read {path}: {e}") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise DataError(f"npz source: {path} is not an npz archive (a .npy array?); save "
                        "with numpy.savez(path, images=...)")
    image_key = next((k for k in ("images", "x") if k in data), None)
    if image_key is None:
        raise DataError(f"npz source {path}: no 'images' (or 'x') array; has {list(data.keys())}")
    label_key = next((k for k in ("labels", "y") if k in data), None)
    try:
        raw_images = data[image_key]
        raw_labels = data[label_key] if label_key else None
    except ValueError as e:  # object arrays need pickle, which is never allowed
        raise DataError(f"npz source {path}: cannot read its arrays ({e}); store numeric arrays") from None
    labels = None
    if raw_labels is not None:
        raw_labels = np.asarray(raw_labels)
        if (raw_labels.ndim != 1 or not np.issubdtype(raw_labels.dtype, np.number)
                or not np.all(np.isfinite(raw_labels)) or np.any(raw_labels < 0)
                or np.any(raw_labels != np.round(raw_labels))):
            raise DataError(f"npz source {path}: labels must be non-negative integers, one "
                            "per image (found NaN, negative or fractional values)")
        labels = raw_labels.astype(np.int64)
    if not np.issubdtype(raw_images.dtype, np.number) or np.iscomplexobj(raw_images):
        raise DataError(f"npz source {path}: images must be a real numeric array, got "
                        f"{raw_images.dtype}")
    images = with_channel_axis(raw_images, path)
    if labels is not None and len(labels) != len(images):
        raise DataError(f"npz source {path}: {len(images)} images but {len(labels)} labels")
    num_classes = int(labels.max()) + 1 if labels is not None and len(labels) else None
    return ImageSet(images, labels, num_classes, f"npz:{path}")


# A data source: ``loader(args, image_shape, data_dir) -> ImageSet`` for ``KIND:ARGS``
# (images may stay in the source's dtype). A new kind is one function registered here.
SOURCES = Registry("data source", error=DataError)
SOURCES.register("fashion_mnist", lambda args, shape, d: _load_idx("fashion_mnist", args or "train", d))
SOURCES.register("mnist", lambda args, shape, d: _load_idx("mnist", args or "train", d))
SOURCES.register("digits", lambda args, shape, d: _load_digits(args or "train"))
SOURCES.register("tfds", lambda args, shape, d: _load_tfds(args, d))
SOURCES.register("folder", lambda args, shape, d: _load_folder(args, shape))
SOURCES.register("npz", lambda args, shape, d: _load_npz(args))


def load(spec: str, image_shape: Optional[Sequence[int]] = None, seed: int = 0,
         data_dir: Optional[str] = None, compact: bool = False) -> ImageSet:
    """Loads the source named by ``spec``; checks images against ``image_shape`` if given.

    Images come as float32 in [0, 1]; with ``compact`` 8-bit images come as uint8 (a
    quarter of the memory), as the distillation run holds its real images."""
    match = _SPEC.match(spec.strip())
    body, start, stop = match.group("body"), match.group("start"), match.group("stop")
    kind, _, args = body.partition(":")
    if kind not in SOURCES:
        raise DataError(f"unknown data source {spec!r}: the kind must be one of {SOURCES.names()}")
    # images still in the source's dtype (uint8 or float)
    data = SOURCES.lookup(kind)(args, image_shape, data_dir)
    if len(data) == 0:
        raise DataError(f"data source {spec!r} is empty")
    data.images = with_channel_axis(data.images, spec)
    if image_shape is not None:
        check_image_shape(data.images, image_shape, spec)
    if start is not None:  # a selector was given
        if start == "" and stop:
            idx = few_shot_indices(len(data), int(stop), data.labels, seed)
        else:
            idx = np.arange(len(data))[slice(int(start or 0), int(stop) if stop else None)]
            if not len(idx):
                raise DataError(f"data source {spec!r}: the selector leaves no images")
        data = ImageSet(data.images[idx], None if data.labels is None else data.labels[idx],
                        data.num_classes, spec)
    # Converted once, after the selector: 2,000 of 60,000 images are not all turned to floats.
    if compact:
        from kd_keras.data.rows import compact as compacted
        data.images = compacted(data.images if data.images.dtype == np.uint8
                                else to_float_images(data.images, spec))
    else:
        data.images = to_float_images(data.images, spec)
    data.name = spec
    return data
