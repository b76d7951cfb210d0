"""BatchNorm students answer at inference as they did in training (issue #21, item 1)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import make_images
from kd_keras.context import RunContext
from kd_keras.distill.batchnorm import batchnorm_layers, recompute_batchnorm
from kd_keras.distill.store import LabelledSet
from kd_keras.distill.student import train_student
from kd_keras.workdir import Workdir

from test_distill import tiny_config


def bn_student():
    """Three conv + BatchNorm blocks at keras.applications' momentum (0.999)."""
    inputs = keras.Input((28, 28, 1))
    x = inputs
    for filters in (8, 16, 16):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization(momentum=0.999)(x)
        x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x))


class _LastAgreement(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.agreement = logs["agreement"]


@pytest.mark.parametrize("bn_batches", [200, 0])
def test_a_batchnorm_student_agrees_at_inference_as_in_training(idx_dir, tmp_path, bn_batches):
    c = tiny_config(idx_dir)
    c.student.epochs, c.student.batch_size, c.student.ema = 4, 20, 0.9
    c.student.learning_rate, c.student.bn_batches = 3e-3, bn_batches
    images, labels = make_images(400)
    x = images[..., None].astype(np.float32) / 255
    y = np.eye(10, dtype=np.float32)[labels]
    ctx = RunContext(config=c, workdir=Workdir(str(tmp_path)),
                     strategy=tf.distribute.get_strategy(), student=bn_student())
    last = _LastAgreement()
    student = train_student(ctx, LabelledSet.of_arrays(x, y), checkpoints=False, callbacks=[last], verbose=0)
    inference = float(np.mean(np.argmax(student.predict(x, verbose=0), 1) == labels))
    assert last.agreement > 0.6  # the student learned in training mode
    if bn_batches:
        assert inference >= last.agreement - 0.05
    else:  # without the recomputation: statistics of the first steps (the fault)
        assert inference < last.agreement - 0.3


def test_recomputed_statistics_are_the_batch_averages():
    layer_in = keras.Input((4,))
    bn = keras.layers.BatchNormalization(momentum=0.99)
    model = keras.Model(layer_in, bn(layer_in))
    batches = [np.random.default_rng(i).normal(i, 1 + i, size=(50, 4)).astype(np.float32)
               for i in range(3)]
    assert recompute_batchnorm(model, iter(batches)) == 3
    np.testing.assert_allclose(bn.moving_mean.numpy(), np.mean([b.mean(0) for b in batches], 0),
                               rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(),
                               np.mean([b.var(0) for b in batches], 0), rtol=1e-4)
    assert bn.momentum == 0.99
    assert recompute_batchnorm(keras.Sequential([keras.layers.Dense(2)]), iter(batches)) == 0


def test_nested_batchnorm_layers_are_found():
    inner = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization()])
    outer_in = keras.Input((4,))
    outer = keras.Model(outer_in, keras.layers.BatchNormalization()(inner(outer_in)))
    assert len(batchnorm_layers(outer)) == 2
