"""Other ways to compute the paper's student epoch (issue #11): the same LeNet-5-Half
arithmetic at batch 64, alternating in one process, milliseconds per step.

  python bench/student_forms.py --reps=5 >> bench/results/student_forms.jsonl

* ``stock``: the library's student and epoch pipeline through ``fit``, as a run trains it.
* ``conv1_bxc``: the first convolution as one depthwise convolution over batch x channels
  (images moved to the channel axis, the kernel tiled over the batch), so the vector units
  run along 64 x 1 channels instead of 1; the second convolution as usual.
* ``convs_bxc``: both convolutions that way (the second sums its 3 input channels after).
* ``gather``: the training images held as one tensor; tf.data yields only shuffled
  indices and ``train_step`` gathers its batch (no per-image work in tf.data).
* ``stock_spe1`` and ``mirrored2_spe1``: one device against MirroredStrategy over two
  logical CPUs (32 images per replica, one per core), one step per execution: Keras's
  multi-step loop fails under MirroredStrategy on logical CPUs ("You must feed a value for
  placeholder tensor").

Random images and teacher probabilities; each way trains one untimed epoch first, then
one timed epoch per round. Forms here are measurements, not library code.
"""
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from absl import app, flags  # noqa: E402

WAYS = ("stock", "conv1_bxc", "convs_bxc", "gather", "stock_spe1", "mirrored2_spe1")
flags.DEFINE_integer("images", 50048, "Random images per epoch (a multiple of the batch).")
flags.DEFINE_integer("reps", 5, "Rounds over the ways.")
flags.DEFINE_list("ways", list(WAYS), f"Ways to compare, from {', '.join(WAYS)}.")
FLAGS = flags.FLAGS
BATCH = 64


def main(argv):
    del argv
    unknown = set(FLAGS.ways) - set(WAYS)
    if unknown:
        sys.exit(f"error: unknown ways {sorted(unknown)}; choose from {', '.join(WAYS)}")
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import numpy as np
    from keras import layers

    from kd_keras import models
    from kd_keras.distill import Distiller
    from kd_keras.distill.student import training_dataset
    from kd_keras.strategy import compile_built

    class BatchChannelConv2D(layers.Conv2D):
        """Conv2D (stride 1) computed as a depthwise convolution over batch x channels."""

        def convolution_op(self, inputs, kernel):
            _, _, cin, cout = kernel.shape
            shape = tf.shape(inputs)
            b = shape[0]
            moved = tf.reshape(tf.transpose(inputs, [1, 2, 0, 3]), [1, shape[1], shape[2], b * cin])
            y = tf.nn.depthwise_conv2d(moved, tf.tile(kernel, [1, 1, b, 1]), [1, 1, 1, 1],
                                       self.padding.upper())
            out = tf.shape(y)
            y = tf.reduce_sum(tf.reshape(y, [out[1], out[2], b, cin, cout]), 3)
            return tf.transpose(y, [2, 0, 1, 3])

    def with_batch_channel_convs(model: keras.Model, count: int) -> keras.Model:
        """``model`` rebuilt with its first ``count`` Conv2D layers as BatchChannelConv2D."""
        convs = [layer.name for layer in model.layers if isinstance(layer, layers.Conv2D)][:count]

        def clone(layer):
            cls = BatchChannelConv2D if layer.name in convs else layer.__class__
            return cls.from_config(layer.get_config())

        rebuilt = keras.models.clone_model(model, clone_function=clone)
        rebuilt.set_weights(model.get_weights())
        gap = float(np.abs(rebuilt(x[:BATCH]) - model(x[:BATCH])).max())
        if gap > 1e-4:
            sys.exit(f"error: the batch x channels form computes another function (gap {gap})")
        return rebuilt

    rng = np.random.default_rng(0)
    x = rng.random((FLAGS.images, 28, 28, 1), dtype=np.float32)
    y = rng.dirichlet(np.ones(10), FLAGS.images).astype(np.float32)
    steps = FLAGS.images // BATCH
    pipeline = training_dataset(x, y, BATCH, 0)
    resident = (tf.constant(x), tf.constant(y))
    options = tf.data.Options()
    options.autotune.enabled = False
    indices = (tf.data.Dataset.range(FLAGS.images).shuffle(FLAGS.images, seed=0).batch(BATCH)
               .with_options(options).prefetch(2))

    class Gathering(Distiller):
        def train_step(self, batch_indices):
            return super().train_step(tuple(tf.gather(t, batch_indices) for t in resident))

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

    def build(way: str):
        keras.utils.set_random_seed(0)
        strategy = mirrored if way.startswith("mirrored") else tf.distribute.get_strategy()
        with strategy.scope():
            student = models.build("lenet5_half", (28, 28, 1), 10)
            if way.endswith("_bxc"):
                student = with_batch_channel_convs(student, 2 if way == "convs_bxc" else 1)
            distiller = (Gathering if way == "gather" else Distiller)(student, loss="soft_ce")
            compile_built(distiller, keras.optimizers.Adam(1e-3), jit_compile=False,
                          steps_per_execution=1 if way.endswith("spe1") else 32)
        data = indices if way == "gather" else pipeline
        return lambda: distiller.fit(data, epochs=1, verbose=0)

    ways = {way: build(way) for way in FLAGS.ways}
    for fit_once in ways.values():
        fit_once()  # tracing
    res = {}
    for _ in range(FLAGS.reps):
        for way, fit_once in ways.items():
            start = time.perf_counter()
            fit_once()
            res.setdefault(way, []).append(round(1e3 * (time.perf_counter() - start) / steps, 3))
            print(way, res[way], flush=True, file=sys.stderr)
    print(json.dumps({"images": FLAGS.images, "batch": BATCH, "ms_per_step": res,
                      "load_at_start": os.getloadavg()[2],
                      "finished": time.strftime("%Y-%m-%d %H:%M")}))


if __name__ == "__main__":
    app.run(main)
