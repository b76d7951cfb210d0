"""How far a training stage is from its arithmetic limit (issue #11): the multiply-adds a
model does per image, counted layer by layer, and the FLOP rate this CPU reaches.

  python bench/arithmetic.py > bench/results/arithmetic.json

Counts 2 x multiply-adds of every Conv2D, Conv2DTranspose and Dense layer (forward); a
training step is taken as 3x the forward (forward, and backward for inputs and weights).
The rate is the best of a large float32 matmul and of the student's own convolution at a
large batch (oneDNN), each timed after a warm-up. The limit of a stage is then
images x epochs x training FLOPs per image / rate: what two perfectly busy cores would need.
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def forward_flops(model: keras.Model) -> int:
    """2 x multiply-adds per image of the model's Conv2D, Conv2DTranspose and Dense layers."""
    total = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            _, h, w, c_out = layer.output.shape
            total += 2 * h * w * c_out * int(np.prod(layer.kernel_size))
        elif isinstance(layer, keras.layers.Conv2DTranspose):
            _, h, w, c_in = layer.input.shape
            total += 2 * h * w * c_in * layer.filters * int(np.prod(layer.kernel_size))
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            c_in = layer.input.shape[-1]
            total += 2 * h * w * c_out * c_in * int(np.prod(layer.kernel_size))
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return int(total)


def rate(fn, flops: float, reps: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return flops / best


def main():
    from kd_keras import models
    from kd_keras.synthesis.cvae import CVAE

    student = models.build("lenet5_half", (28, 28, 1), 10)
    cvaes = {kind: CVAE((28, 28, 1), 10, architecture=kind) for kind in ("conv", "mlp")}
    a = tf.random.normal([2048, 2048])
    matmul = tf.function(lambda: tf.reduce_sum(a @ a))
    x = tf.random.normal([1024, 28, 28, 1])
    step = tf.function(lambda: tf.reduce_sum(student(x)))
    per_image = forward_flops(student)
    rates = {"matmul_2048": rate(lambda: matmul().numpy(), 2 * 2048 ** 3),
             "student_forward_batch1024": rate(lambda: step().numpy(), 1024 * per_image)}
    print(json.dumps({
        "student": "lenet5_half", "student_forward_flops_per_image": per_image,
        "cvae_forward_flops_per_image": {kind: forward_flops(m.encoder) + forward_flops(m.decoder)
                                         for kind, m in cvaes.items()},
        "flops_per_second": {k: round(v) for k, v in rates.items()},
        "load_at_start": os.getloadavg()[0], "finished": time.strftime("%Y-%m-%d %H:%M")}))


if __name__ == "__main__":
    main()
