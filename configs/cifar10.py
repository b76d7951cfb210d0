"""CIFAR-10, the paper's setting: AlexNet -> AlexNet-Half, N = 2,000, M = 40,000 (TFDS)."""

from kd_keras.config import base_config, select


def _settings():
    c = base_config(
        name="cifar10", train="tfds:cifar10:train", test="tfds:cifar10:test",
        unlabeled="tfds:cifar10:train[:2000]", image_shape=(32, 32, 3), num_classes=10,
        teacher_model="alexnet", student_model="alexnet_half", teacher_epochs=100,
        num_synthetic=40000, cvae_epochs=600, cvae_likelihood="normal")
    c.teacher.batch_size = 128
    return c


def get_config(arg=None):
    return select(_settings, arg)
