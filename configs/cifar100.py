"""CIFAR-100, the paper's setting: ResNet-32 -> ResNet-20, N = 5,000, M = 40,000 (TFDS)."""

import functools

from kd_keras.config import cifar_config, select


def get_config(arg=None):
    return select(functools.partial(
        cifar_config, name="cifar100", num_classes=100, n_real=5000, teacher_model="resnet32",
        student_model="resnet20", teacher_epochs=200), arg)
