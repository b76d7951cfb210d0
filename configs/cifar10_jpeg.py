"""CIFAR-10 (JPEG) on 2 CPU cores: cnn4 -> cnn4_half, N = 2,000, M = 40,000.

The paper's AlexNet -> AlexNet-Half pair (``configs/cifar10.py``) needs about 0.45 GFLOP per
teacher image and hours per student here; this pair is CPU-sized and stated here:

* teacher ``cnn4``: 24.5 MMAC per image (four stages of 3x3 convolutions with batch norm,
  32 | 64 | 128, 128 | 256 channels), trained 30 epochs with flips and 4-pixel shifts and
  a cosine-decayed Adam rate;
* student ``cnn4_half``: half its channels, 6.3 MMAC, about a quarter of its compute, like
  the paper's half-width students.

Data: the workplace's JPEG re-encode of CIFAR-10 (``../shared/data/cifar10_jpeg``), unpacked
and decoded once into ``~/.cache/kd_keras/cifar10_jpeg`` ($KD_KERAS_CACHE or
--config.data.data_dir name another folder); no flag needed. Results on it are "CIFAR-10
(JPEG)", compared with published CIFAR-10 figures only as a share of each run's teacher.
"""

from kd_keras.config import base_config, select


def _settings():
    c = base_config(
        name="cifar10_jpeg", train="cifar10_jpeg:train", test="cifar10_jpeg:test",
        unlabeled="cifar10_jpeg:train[:2000]", image_shape=(32, 32, 3), num_classes=10,
        teacher_model="cnn4", student_model="cnn4_half", teacher_epochs=30,
        num_synthetic=40000, cvae_epochs=600, cvae_likelihood="normal")
    c.teacher.batch_size = 128
    c.teacher.augment = "flip_shift"
    c.teacher.lr_schedule = "cosine"
    c.teacher.learning_rate = 2e-3
    return c


def get_config(arg=None):
    return select(_settings, arg)
