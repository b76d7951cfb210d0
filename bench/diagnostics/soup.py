"""Scratch check: can three LeNet-5-Halfs trained from one initialisation (different data
orders) be averaged into one model (a "soup")? Prints each member, the ensemble and the soup.

    python bench/diagnostics/soup.py
"""
import os
import sys

import keras
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from kd_keras import data, models  # noqa: E402

train, test = data.load("fashion_mnist:train[:10000]"), data.load("fashion_mnist:test")
x, y = train.images.astype("float32"), train.labels
xt, yt = test.images.astype("float32"), test.labels
if x.max() > 1.5:
    x, xt = x / 255, xt / 255
keras.utils.set_random_seed(0)
init = models.build("lenet5_half", (28, 28, 1), 10).get_weights()
weights, probs = [], 0
for k in range(3):
    m = models.build("lenet5_half", (28, 28, 1), 10)
    m.set_weights(init)
    m.compile(keras.optimizers.Adam(2e-3),
              keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    order = np.random.default_rng(k).permutation(len(x))
    m.fit(x[order], y[order], batch_size=128, epochs=30, verbose=0, shuffle=True)
    print("member", k, m.evaluate(xt, yt, verbose=0)[1], flush=True)
    weights.append(m.get_weights())
    probs = probs + keras.ops.convert_to_numpy(keras.ops.softmax(m.predict(xt, verbose=0)))
    print("ensemble", (probs.argmax(1) == yt).mean())
    m.set_weights([np.mean([w[i] for w in weights], 0) for i in range(len(init))])
    print("soup of", k + 1, m.evaluate(xt, yt, verbose=0)[1], flush=True)
