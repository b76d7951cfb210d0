"""CIFAR-100, the paper's setting: ResNet-32 -> ResNet-20, N = 5,000, M = 40,000 (TFDS)."""

from kd_keras.config import base_config, select


def _settings():
    c = base_config(
        name="cifar100", train="tfds:cifar100:train", test="tfds:cifar100:test",
        unlabeled="tfds:cifar100:train[:5000]", image_shape=(32, 32, 3), num_classes=100,
        teacher_model="resnet32", student_model="resnet20", teacher_epochs=200,
        num_synthetic=40000, cvae_epochs=600, cvae_likelihood="normal")
    c.teacher.batch_size = 128
    return c


def get_config(arg=None):
    return select(_settings, arg)
