"""How far ``fit`` is from the student's own training step (issue #11): the paper's
LeNet-5-Half at batch 64, milliseconds per step, four ways, alternating in one process.

  python bench/step_floor.py --reps=5 >> bench/results/step_floor.jsonl

* ``fit``: ``Distiller.fit`` on the real epoch pipeline (``training_dataset``), as a run does;
  median epoch after the first.
* ``loop_pipeline``: the Distiller's ``train_step`` in a bare ``tf.function`` loop over the
  same pipeline's iterator (no Keras loop, callbacks or metrics logging).
* ``loop_one_batch``: the same loop over one batch repeated (tf.data's cost without its work).
* ``loop_constant``: the same loop on a constant batch (no tf.data at all): the step's floor.

The loops report the best of 3 epochs. Random images and random teacher probabilities.
"""
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from absl import app, flags  # noqa: E402

flags.DEFINE_integer("images", 50048, "Random images per epoch (a multiple of the batch).")
flags.DEFINE_integer("batch", 64, "Images per step (the paper's 64).")
flags.DEFINE_integer("reps", 5, "Rounds over the four ways.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    import keras
    import numpy as np
    import tensorflow as tf

    from kd_keras import models
    from kd_keras.distill import Distiller
    from kd_keras.distill.student import training_dataset
    from kd_keras.strategy import compile_built

    rng = np.random.default_rng(0)
    x = rng.random((FLAGS.images, 28, 28, 1), dtype=np.float32)
    y = rng.dirichlet(np.ones(10), FLAGS.images).astype(np.float32)
    steps = FLAGS.images // FLAGS.batch
    pipeline = training_dataset(x, y, FLAGS.batch, 0)
    batch = (tf.constant(x[:FLAGS.batch]), tf.constant(y[:FLAGS.batch]))
    one_batch = tf.data.Dataset.from_tensors(batch).repeat(steps)

    def distiller() -> Distiller:
        keras.utils.set_random_seed(0)
        d = Distiller(models.build("lenet5_half", (28, 28, 1), 10), loss="soft_ce")
        compile_built(d, keras.optimizers.Adam(1e-3), jit_compile=False, steps_per_execution=32)
        return d

    def fit_ms() -> float:
        times = []

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                times.append(time.perf_counter() - self.start)

        distiller().fit(pipeline, epochs=4, verbose=0, callbacks=[Timer()])
        return 1e3 * float(np.median(times[1:])) / steps

    def loop_ms(dataset=None) -> float:
        d = distiller()

        @tf.function
        def over_iterator(iterator):
            for _ in tf.range(steps):
                d.train_step(next(iterator))

        @tf.function
        def on_constant():
            for _ in tf.range(steps):
                d.train_step(batch)

        run = (lambda: on_constant()) if dataset is None else (lambda: over_iterator(iter(dataset)))
        run()  # tracing
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - start)
        return 1e3 * best / steps

    ways = {"fit": fit_ms, "loop_pipeline": lambda: loop_ms(pipeline),
            "loop_one_batch": lambda: loop_ms(one_batch), "loop_constant": loop_ms}
    res = {}
    for _ in range(FLAGS.reps):
        for name, fn in ways.items():
            res.setdefault(name, []).append(round(fn(), 3))
            print(name, res[name], flush=True, file=sys.stderr)
    print(json.dumps({"images": FLAGS.images, "batch": FLAGS.batch, "ms_per_step": res,
                      "load_at_start": os.getloadavg()[2],
                      "finished": time.strftime("%Y-%m-%d %H:%M")}))


if __name__ == "__main__":
    app.run(main)
