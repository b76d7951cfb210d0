"""Student-training levers side by side in one process, alternating (issue #11): plain
``fit``, XLA (``jit_compile``), ``steps_per_execution`` and both, LeNet-5-Half at batch 64.

  python bench/speed_levers.py 20000 [reps] >> bench/results/speed_levers.jsonl

Each lever trains 1 warm-up epoch (tracing) and then 2 timed epochs on N random images;
prints seconds per epoch, and a JSON line at the end.
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
from kd_keras import models  # noqa: E402
from kd_keras.distill import Distiller  # noqa: E402
from kd_keras.distill.student import training_dataset  # noqa: E402
from kd_keras.strategy import compile_built  # noqa: E402

rng = np.random.default_rng(0)
n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
x = rng.random((n, 28, 28, 1), dtype=np.float32)
y = tf.nn.softmax(rng.normal(size=(n, 10)).astype(np.float32)).numpy()
strategy = tf.distribute.MirroredStrategy()


def run(jit, spe, bs=64):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        d = Distiller(models.build("lenet5_half", (28, 28, 1), 10))
        compile_built(d, keras.optimizers.Adam(1e-3), jit_compile=jit, steps_per_execution=spe)
    ds = training_dataset(x, y, bs, 0)
    d.fit(ds, epochs=1, verbose=0)  # warm-up/tracing
    t = time.perf_counter()
    d.fit(ds, epochs=2, verbose=0)
    return (time.perf_counter() - t) / 2


res = {}
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 2
for rep in range(reps):
    for name, args in [("base", (False, 1)), ("jit", (True, 1)), ("spe32", (False, 32)), ("jit+spe32", (True, 32))]:
        res.setdefault(name, []).append(round(run(*args), 2))
        print(name, res[name], flush=True)
print(json.dumps({"images": n, "seconds_per_epoch": res, "load": os.getloadavg()[0],
                  "finished": time.strftime("%Y-%m-%d %H:%M")}))
