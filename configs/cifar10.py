"""CIFAR-10, the paper's setting: AlexNet -> AlexNet-Half, N = 2,000, M = 40,000 (TFDS)."""

import functools

from kd_keras.config import cifar_config, select


def get_config(arg=None):
    return select(functools.partial(
        cifar_config, name="cifar10", num_classes=10, n_real=2000, teacher_model="alexnet",
        student_model="alexnet_half", teacher_epochs=100), arg)
