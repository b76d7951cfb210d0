"""Shared fixtures: tiny learnable image sets written in the formats kd_keras reads.

The CPU is split into two logical devices before TensorFlow starts, so distribution
tests can run MirroredStrategy over two replicas on a machine without accelerators.
"""

import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

from kd_keras.data import write_idx  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_images(n: int, seed: int = 0, size: int = 28, num_classes: int = 10):
    """uint8 images whose class is a bright 7x7 patch at one of ``num_classes`` places."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % num_classes
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(n, size, size), dtype=np.uint8)
    for i, c in enumerate(labels):
        r, col = 3 + 7 * ((c // 4) % 3), 3 + 6 * (c % 4)
        images[i, r:r + 7, col:col + 7] = 230
    return images, labels.astype(np.uint8)


@pytest.fixture(scope="session")
def idx_dir(tmp_path_factory):
    """A Fashion-MNIST-shaped IDX folder (gzip) with 600 train and 200 test images."""
    d = tmp_path_factory.mktemp("idx")
    for split, (stem_x, stem_y), n, seed in (
            ("train", ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"), 600, 0),
            ("test", ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"), 200, 1)):
        x, y = make_images(n, seed)
        write_idx(str(d / f"{stem_x}.gz"), x)
        write_idx(str(d / f"{stem_y}.gz"), y)
    return str(d)


def as_at_a_terminal() -> None:
    """A Popen ``preexec_fn``: Ctrl-C's default action back in the child, which inherits it
    ignored when the tests themselves run in the background (``nohup``, ``&``), and then
    Python would never see SIGINT."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_command(script: str, *args: str, env: dict | None = None, check: bool = True):
    """Runs ``bin/<script>`` in a fresh Python; returns the CompletedProcess."""
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "bin", script), *args],
                          capture_output=True, text=True, env=full_env, cwd=ROOT, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc
