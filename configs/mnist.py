"""MNIST, the paper's setting: LeNet-5 -> LeNet-5-Half, N = 2,000, M = 24,000.

Reads IDX files from $KD_KERAS_MNIST_DIR (or --config.data.data_dir), or else the shared
``../shared/data/mnist/{train,test}.npz`` beside the repository, with no flag needed;
``tfds:mnist:train`` works too where TFDS can download.
"""

from kd_keras.config import base_config, select


def _settings():
    c = base_config(
        name="mnist", train="mnist:train", test="mnist:test", unlabeled="mnist:train[:2000]",
        image_shape=(28, 28, 1), num_classes=10, teacher_model="lenet5",
        student_model="lenet5_half", teacher_epochs=20, num_synthetic=24000, cvae_epochs=100)
    c.cvae.architecture = "mlp"  # FS-BBT's own CVAE for this data set (dense 256-128-64)
    return c


def get_config(arg=None):
    return select(_settings, arg)
