"""Where a student epoch's wall time goes, old code against new, alternating (issue #11).

  git worktree add /work/before HEAD~1
  python bench/epoch_gaps.py --trees=/work/before,. --variant=paper --epochs=15 --reps=3 \
      --out=bench/results/epoch_gaps.jsonl

Each run is a fresh process of one tree's ``kd_keras`` training the config variant's student
(``train_student``, as a real run does) on ``--images`` random 28x28 images for
``--epochs`` epochs. A callback times every epoch and the wait before its first step: the
time ``fit`` spends between starting an epoch and running its first step (making the new
epoch's iterator and destroying the last one). A wait over 1 s counts as a stall. One JSON
line per run.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

from absl import app, flags

flags.DEFINE_list("trees", None, "Checkouts to compare (git worktrees), in turn.", required=True)
flags.DEFINE_string("variant", "paper", "Config variant of configs/fashion_mnist.py ('' = default).")
flags.DEFINE_integer("epochs", 15, "Epochs per run.")
flags.DEFINE_integer("images", 52000, "Random images (a paper-setting run trains on 52,000).")
flags.DEFINE_integer("reps", 3, "Rounds over all trees.")
flags.DEFINE_string("out", "bench/results/epoch_gaps.jsonl", "JSONL file to append to.")
flags.DEFINE_string("child", None, "Internal: run one measurement in this tree.")
FLAGS = flags.FLAGS


def measure(tree: str) -> dict:
    """Trains the student once in this process, with ``tree``'s kd_keras; per-epoch times."""
    sys.path.insert(0, tree)
    import importlib.util

    import keras
    import numpy as np
    import tensorflow as tf

    from kd_keras.context import RunContext
    from kd_keras.distill.student import train_student
    from kd_keras.workdir import Workdir

    spec = importlib.util.spec_from_file_location("cfg", os.path.join(tree, "configs", "fashion_mnist.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(FLAGS.variant)
    with config.unlocked():
        config.student.epochs = FLAGS.epochs
    rng = np.random.default_rng(0)
    x = rng.random((FLAGS.images, 28, 28, 1), dtype=np.float32)
    y = rng.dirichlet(np.ones(10), FLAGS.images).astype(np.float32)

    class Times(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs, self.waits = [], []

        def on_epoch_begin(self, epoch, logs=None):
            self.start, self.first = time.perf_counter(), None

        def on_train_batch_begin(self, batch, logs=None):
            if self.first is None:
                self.first = time.perf_counter() - self.start

        def on_epoch_end(self, epoch, logs=None):
            self.epochs.append(round(time.perf_counter() - self.start, 3))
            self.waits.append(round(self.first, 3))

    times = Times()
    with tempfile.TemporaryDirectory(prefix="epoch_gaps_") as scratch:  # gone afterwards
        ctx = RunContext(config=config, workdir=Workdir(scratch),
                         strategy=tf.distribute.get_strategy())
        train_student(ctx, x, y, callbacks=[times], verbose=0)
    return {"epoch_seconds": times.epochs, "first_step_wait": times.waits}


def main(argv):
    del argv
    if FLAGS.child:
        print("RESULT " + json.dumps(measure(FLAGS.child)), flush=True)
        return
    for rep in range(FLAGS.reps):
        for tree in FLAGS.trees:
            tree = os.path.abspath(tree)
            commit = subprocess.run(["git", "-C", tree, "rev-parse", "--short", "HEAD"],
                                    capture_output=True, text=True).stdout.strip()
            load = os.getloadavg()[0]
            proc = subprocess.run([sys.executable, os.path.abspath(__file__), f"--child={tree}",
                                   f"--variant={FLAGS.variant}", f"--epochs={FLAGS.epochs}",
                                   f"--images={FLAGS.images}", "--trees=-"],
                                  capture_output=True, text=True,
                                  env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
            lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
            if proc.returncode or not lines:
                print(f"epoch_gaps: {tree} failed:\n{proc.stderr[-2000:]}", flush=True)
                continue
            result = json.loads(lines[-1][len("RESULT "):])
            waits = result["first_step_wait"]
            record = {"tree": tree, "commit": commit, "variant": FLAGS.variant or "default",
                      "rep": rep, "images": FLAGS.images, "epochs": FLAGS.epochs,
                      "total_seconds": round(sum(result["epoch_seconds"]), 2),
                      "wait_seconds": round(sum(waits), 2),
                      "stalls": sum(w > 1.0 for w in waits), **result,
                      "load_at_start": round(load, 2), "finished": time.strftime("%Y-%m-%d %H:%M")}
            with open(FLAGS.out, "a") as f:
                f.write(json.dumps(record) + "\n")
            print(f"epoch_gaps: {commit} {record['variant']} rep {rep}: "
                  f"{record['total_seconds']:.1f} s over {FLAGS.epochs} epochs, first-step waits "
                  f"{record['wait_seconds']:.1f} s, {record['stalls']} stall(s)", flush=True)


if __name__ == "__main__":
    app.run(main)
