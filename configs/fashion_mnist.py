"""Fashion-MNIST, the paper's setting: LeNet-5 -> LeNet-5-Half, N = 2,000, M = 48,000.

Use ``--config=configs/fashion_mnist.py`` (our defaults: real images + CutMix),
``configs/fashion_mnist.py:paper`` (the paper's method exactly) or ``:quick`` (a demo).
"""

from kd_keras.config import base_config, select


def _settings():
    c = base_config(
        name="fashion_mnist", train="fashion_mnist:train", test="fashion_mnist:test",
        unlabeled="fashion_mnist:train[:2000]", image_shape=(28, 28, 1), num_classes=10,
        teacher_model="lenet5", student_model="lenet5_half", teacher_epochs=20,
        num_synthetic=48000, cvae_epochs=100)
    c.cvae.architecture = "mlp"  # FS-BBT's own CVAE for this data set (dense 256-128-64)
    return c


def get_config(arg=None):
    return select(_settings, arg)
