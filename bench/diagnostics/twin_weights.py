"""Scratch check (issue #26): did a first student start where the bench teacher started?
Prints each kept first student's weight distance to the teacher's final weights and to the
initial weights seed 0 gives the teacher's model (what the bench teacher started from), and
the teacher's own distance to the initial weights of seed 0 and of seed 7919.

    python bench/diagnostics/twin_weights.py --config=configs/fashion_mnist.py \
        --teacher=runs/bench_fmnist/teacher/teacher.keras RUN_DIR [RUN_DIR ...]
"""
import os
import sys

import keras
import numpy as np
from absl import app, flags

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from kd_keras import models  # noqa: E402
from kd_keras.config import from_file  # noqa: E402

flags.DEFINE_string("config", "configs/fashion_mnist.py", "the runs' config file")
flags.DEFINE_string("teacher", "runs/bench_fmnist/teacher/teacher.keras", "the bench teacher")
FLAGS = flags.FLAGS


def flat(weights) -> np.ndarray:
    return np.concatenate([w.ravel() for w in weights])


def main(argv):
    config = from_file(FLAGS.config)
    shape, classes, name = config.data.image_shape, config.data.num_classes, config.teacher.model

    def initial(seed):
        keras.utils.set_random_seed(seed)
        return flat(models.build(name, shape, classes).get_weights())

    teacher = flat(keras.models.load_model(FLAGS.teacher, compile=False).get_weights())
    start = initial(0)
    print(f"teacher: {np.linalg.norm(teacher - start):.2f} from seed 0's start, "
          f"{np.linalg.norm(teacher - initial(7919)):.2f} from seed 7919's")
    for run in argv[1:]:
        folder = os.path.join(run, "unpaid_labellers")
        for f in sorted(f for f in os.listdir(folder) if f.endswith(".weights.h5")):
            m = models.build(name, shape, classes)
            m.load_weights(os.path.join(folder, f))
            w = flat(m.get_weights())
            print(f"{os.path.basename(run.rstrip('/'))} first student {f.split('.')[0]}: "
                  f"{np.linalg.norm(w - teacher):.2f} from the teacher, "
                  f"{np.linalg.norm(w - start):.2f} from seed 0's start")


if __name__ == "__main__":
    app.run(main)
