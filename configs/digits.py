"""scikit-learn's 8x8 digits (1,437 train / 360 test here): LeNet-5 -> LeNet-5-Half with
N = 200 real images and M = 5,000 synthetic ones. Small enough to benchmark in minutes."""

from kd_keras.config import base_config, select


def _settings():
    c = base_config(
        name="digits", train="digits:train", test="digits:test", unlabeled="digits:train[:200]",
        image_shape=(8, 8, 1), num_classes=10, teacher_model="lenet5",
        student_model="lenet5_half", teacher_epochs=40, num_synthetic=5000, cvae_epochs=200)
    c.cvae.batch_size = 64
    return c


def get_config(arg=None):
    return select(_settings, arg)
