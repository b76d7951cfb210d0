"""Scratch check: ms per training step of one LeNet-5-Half against three trained together in
one graph (one fit, three outputs), on in-memory data, alternated twice.

    python bench/diagnostics/stack.py
"""
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from kd_keras import models  # noqa: E402

x = np.random.rand(10000, 28, 28, 1).astype("float32")
y = np.random.dirichlet(np.ones(10), 10000).astype("float32")


def kl(t, p):
    return keras.losses.kl_divergence(t, tf.nn.softmax(p / 2))


def build(k):
    inputs = keras.Input((28, 28, 1))
    subs = [models.build("lenet5_half", (28, 28, 1), 10) for _ in range(k)]
    for i, s in enumerate(subs):
        s.name = f"m{i}"
    outs = [s(inputs) for s in subs]
    m = keras.Model(inputs, outs if k > 1 else outs[0])
    m.compile(keras.optimizers.Adam(2e-3, use_ema=True, ema_momentum=0.999),
              loss=[kl] * k if k > 1 else kl, steps_per_execution=32)
    return m


datasets = {1: tf.data.Dataset.from_tensor_slices((x, y)).batch(128).prefetch(2),
            3: tf.data.Dataset.from_tensor_slices((x, (y, y, y))).batch(128).prefetch(2)}
for _ in range(2):
    for k, ds in datasets.items():
        m = build(k)
        m.fit(ds, epochs=1, verbose=0)
        start = time.time()
        m.fit(ds, epochs=3, verbose=0)
        print(f"k={k}: {1000 * (time.time() - start) / (3 * 79):.2f} ms/step", flush=True)
