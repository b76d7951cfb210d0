"""Per-epoch cost of the training levers of issue #11, side by side in one process,
alternating, on N random 28x28 images (LeNet-5-Half student; the FS-BBT CVAE).

  python bench/speed_levers.py --images=20000 --reps=3 \
      --levers=student:mirrored,student:default,student:default:bs256 \
      >> bench/results/speed_levers.jsonl

A lever is ``MODEL:STRATEGY[:OPTION...]``: MODEL ``student`` or ``cvae``; STRATEGY
``mirrored`` (tf.distribute.MirroredStrategy over the one CPU) or ``default`` (no
distribution); options ``bsN`` (batch size), ``speN`` (steps per execution, default 32
for the student and 8 for the CVAE), ``jit`` (XLA), ``bf16`` (mixed_bfloat16), ``fused``
(Adam's update as TensorFlow's one fused ``ResourceApplyAdam`` kernel per variable
instead of Keras's twenty-odd small ops; defined here, not in the library). Thread
pools are per process: ``--intra``/``--inter`` set them for every lever of the run.
Each lever trains once untimed (tracing), then ``--epochs`` timed epochs; prints seconds
per epoch and a JSON line at the end.
"""
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from absl import app, flags  # noqa: E402

flags.DEFINE_integer("images", 20000, "Random images per student epoch (the CVAE uses 2,000).")
flags.DEFINE_integer("reps", 2, "Rounds over all levers.")
flags.DEFINE_integer("epochs", 2, "Timed epochs per measurement.")
flags.DEFINE_list("levers", "student:mirrored,student:default", "Levers to compare.")
flags.DEFINE_integer("intra", 0, "tf.config.threading intra-op threads (0 = TF's choice).")
flags.DEFINE_integer("inter", 0, "tf.config.threading inter-op threads (0 = TF's choice).")
FLAGS = flags.FLAGS


def fused_adam(learning_rate: float):
    """Keras's Adam with its per-variable update done by ``tf.raw_ops.ResourceApplyAdam``:
    the same arithmetic in one op per variable (float32, no AMSGrad)."""
    import keras
    import tensorflow as tf

    def handle(variable):
        return getattr(variable, "_value", variable).handle  # a Keras variable's tf.Variable

    class FusedAdam(keras.optimizers.Adam):
        def update_step(self, gradient, variable, learning_rate):
            index, step = self._get_variable_index(variable), tf.cast(self.iterations + 1, tf.float32)
            tf.raw_ops.ResourceApplyAdam(
                var=handle(variable), m=handle(self._momentums[index]),
                v=handle(self._velocities[index]), beta1_power=tf.pow(self.beta_1, step),
                beta2_power=tf.pow(self.beta_2, step), lr=tf.cast(learning_rate, tf.float32),
                beta1=self.beta_1, beta2=self.beta_2, epsilon=self.epsilon, grad=gradient)

    return FusedAdam(learning_rate)


def main(argv):
    del argv
    import keras
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.intra)
    tf.config.threading.set_inter_op_parallelism_threads(FLAGS.inter)
    from kd_keras import models
    from kd_keras.distill import Distiller
    from kd_keras.distill.student import training_dataset
    from kd_keras.strategy import compile_built
    from kd_keras.synthesis.cvae import CVAE

    rng = np.random.default_rng(0)
    x = rng.random((FLAGS.images, 28, 28, 1), dtype=np.float32)
    y = tf.nn.softmax(rng.normal(size=(FLAGS.images, 10)).astype(np.float32)).numpy()
    cx, cy = x[:2000], np.eye(10, dtype=np.float32)[y[:2000].argmax(1)]
    strategies = {"mirrored": tf.distribute.MirroredStrategy(),
                  "default": tf.distribute.get_strategy()}

    def run(lever: str) -> float:
        kind, strategy, *options = lever.split(":")
        opts = {o.rstrip("0123456789"): int(o[len(o.rstrip("0123456789")):] or 1) for o in options}
        keras.mixed_precision.set_global_policy("mixed_bfloat16" if "bf" in opts else "float32")
        keras.utils.set_random_seed(0)
        with strategies[strategy].scope():
            if kind == "student":
                model = Distiller(models.build("lenet5_half", (28, 28, 1), 10))
                ds = training_dataset(x, y, opts.get("bs", 64), 0)
            else:
                model = CVAE((28, 28, 1), 10)
                ds = (tf.data.Dataset.from_tensor_slices((cx, cy)).shuffle(2000, seed=0)
                      .batch(opts.get("bs", 256)).prefetch(tf.data.AUTOTUNE))
            optimizer = fused_adam(1e-3) if "fused" in opts else keras.optimizers.Adam(1e-3)
            compile_built(model, optimizer, jit_compile="jit" in opts,
                          steps_per_execution=opts.get("spe", 32 if kind == "student" else 8))
        model.fit(ds, epochs=1, verbose=0)  # tracing
        start = time.perf_counter()
        model.fit(ds, epochs=FLAGS.epochs, verbose=0)
        keras.mixed_precision.set_global_policy("float32")
        return (time.perf_counter() - start) / FLAGS.epochs

    res = {}
    for _ in range(FLAGS.reps):
        for lever in FLAGS.levers:
            res.setdefault(lever, []).append(round(run(lever), 3))
            print(lever, res[lever], flush=True, file=sys.stderr)
    print(json.dumps({"images": FLAGS.images, "intra": FLAGS.intra, "inter": FLAGS.inter,
                      "seconds_per_epoch": res, "load_at_start": os.getloadavg()[2],
                      "finished": time.strftime("%Y-%m-%d %H:%M")}))


if __name__ == "__main__":
    app.run(main)
