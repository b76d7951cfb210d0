"""CIFAR-10 (JPEG): unpacked once into a cache folder, decoded in the README's order and
checked against its hashes; the CPU-sized cnn4 pair; teacher training with augmentation."""

import hashlib
import os
import tarfile

import numpy as np
import pytest
from PIL import Image

from kd_keras import data, models
from kd_keras.data import cifar10_jpeg
from kd_keras.errors import DataError


def _tarball(tmp_path, per_class=(3, 2)):
    """A tiny tarball in the shared layout; returns (path, {split: expected uint8 array})."""
    root = tmp_path / "src"
    expected = {}
    rng = np.random.default_rng(0)
    for split, count in zip(("train", "test"), per_class):
        arrays = []
        for name in cifar10_jpeg.CLASSES:
            (root / split / name).mkdir(parents=True)
            for k in (10, 2, 1)[:count]:  # numbered out of lexical order: 10 sorts last
                im = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
                path = root / split / name / f"{k:d}.jpg"
                Image.fromarray(im).save(path, quality=90)
        for name in cifar10_jpeg.CLASSES:
            for k in sorted((10, 2, 1)[:count]):
                arrays.append(np.asarray(Image.open(root / split / name / f"{k}.jpg").convert("RGB")))
        expected[split] = np.stack(arrays)
    path = tmp_path / "c.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for split in ("train", "test"):
            tar.add(root / split, arcname=split)
    return path, expected


@pytest.fixture
def shared(tmp_path, monkeypatch):
    path, expected = _tarball(tmp_path)
    monkeypatch.setenv("KD_KERAS_CIFAR10_JPEG_TAR", str(path))
    monkeypatch.setenv("KD_KERAS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cifar10_jpeg, "EXPECTED", {
        s: (len(a), hashlib.sha256(a.tobytes()).hexdigest()[:16]) for s, a in expected.items()})
    return expected


def test_unpacked_once_decoded_in_order_and_checked(shared, tmp_path, capsys):
    train = data.load("cifar10_jpeg:train")
    assert "unpacking" in capsys.readouterr().out
    np.testing.assert_array_equal(np.round(train.images * 255).astype(np.uint8), shared["train"])
    np.testing.assert_array_equal(train.labels, np.repeat(np.arange(10), 3))
    assert train.num_classes == 10
    few = data.load("cifar10_jpeg:train[:10]", (32, 32, 3), seed=1)
    assert sorted(few.labels.tolist()) == list(range(10))  # class-balanced few-shot set
    test = data.load("cifar10_jpeg:test")
    assert len(test) == 20 and "unpacking" not in capsys.readouterr().out  # once
    assert os.path.exists(tmp_path / "cache" / "cifar10_jpeg" / "test.npz")


def test_a_hash_that_differs_is_an_error(shared, monkeypatch):
    monkeypatch.setattr(cifar10_jpeg, "EXPECTED", {"train": (30, "0" * 16), "test": (20, "0" * 16)})
    with pytest.raises(DataError, match="the README says 30 and 0000"):
        data.load("cifar10_jpeg:train")


def test_missing_tarball_and_unknown_split(tmp_path, monkeypatch):
    monkeypatch.setenv("KD_KERAS_CIFAR10_JPEG_TAR", str(tmp_path / "none.tar.gz"))
    monkeypatch.setenv("KD_KERAS_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="none.tar.gz is not here"):
        data.load("cifar10_jpeg:test")
    with pytest.raises(DataError, match="unknown split 'val'"):
        data.load("cifar10_jpeg:val")


def _macs(model) -> int:
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            h, w, c = layer.output.shape[1:]
            total += h * w * c * int(np.prod(layer.kernel.shape[:3]))
        elif isinstance(layer, keras.layers.Dense):
            total += int(np.prod(layer.kernel.shape))
    return total


def test_cnn4_pair_is_cpu_sized_and_its_student_a_quarter():
    teacher = models.build("cnn4", (32, 32, 3), 10)
    student = models.build("cnn4_half", (32, 32, 3), 10)
    assert _macs(teacher) <= 30e6  # the limit for a CPU-sized teacher
    assert 0.2 < _macs(student) / _macs(teacher) < 0.3


def test_teacher_trains_with_flips_shifts_and_cosine(tmp_path):
    from kd_keras.config import base_config
    from kd_keras.supervised import train_classifier

    rng = np.random.default_rng(0)
    labels = np.arange(64) % 2
    images = rng.uniform(0, 0.2, (64, 32, 32, 3)).astype(np.float32)
    images[labels == 1, :, :, 0] += 0.7  # class 1 is red: flips and shifts keep that
    train = data.ImageSet(images, labels, 2, "red")
    model = train_classifier("lenet5_half", train, epochs=8, batch_size=16, learning_rate=3e-3,
                             augment="flip_shift", lr_schedule="cosine")
    assert model.optimizer.learning_rate.numpy() < 3e-3 * 0.05  # decayed to about 0
    from kd_keras.distill.evaluation import accuracy, predict_logits
    assert accuracy(predict_logits(model, images), labels) > 0.9
    c = base_config(name="x", train="", test="", unlabeled="", image_shape=(32, 32, 3),
                    num_classes=2, teacher_model="cnn4", student_model="cnn4_half",
                    teacher_epochs=1, num_synthetic=0, cvae_epochs=0)
    assert (c.teacher.augment, c.teacher.lr_schedule) == ("none", "constant")


def test_a_foreign_folder_in_the_way_is_not_deleted(shared, tmp_path):
    foreign = tmp_path / "cache" / "cifar10_jpeg.unpacking"
    foreign.mkdir(parents=True)
    (foreign / "mine.txt").write_text("a user's file")
    with pytest.raises(DataError, match="was not made by kd_keras"):
        data.load("cifar10_jpeg:test")
    assert (foreign / "mine.txt").read_text() == "a user's file"
