"""Scratch check (issue #26): how do one first student's answers differ from three together?
Reads the first students' eval answers a finished run kept (WORKDIR/unpaid_labellers/K.npz)
and the bench teacher's answers to the same test set, and prints for each first student,
their average and the same student's answers re-tempered (softmax(log p / tau), the tau that
best matches the teacher on the test set: an oracle, to see what calibration alone could give):
accuracy, mean top-1 confidence, cross-entropy to the true labels and KL(teacher || answers).

    python bench/diagnostics/calibration.py --config=configs/fashion_mnist.py \
        --teacher=runs/bench_fmnist/teacher/teacher RUN_DIR [RUN_DIR ...]
"""
import os
import sys

import numpy as np
from absl import app, flags

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from kd_keras import data  # noqa: E402
from kd_keras.teachers.factory import make_teacher  # noqa: E402

flags.DEFINE_string("config", "configs/fashion_mnist.py", "the runs' config file")
flags.DEFINE_string("teacher", "runs/bench_fmnist/teacher/teacher", "the bench teacher")
flags.DEFINE_string("test", "fashion_mnist:test", "the eval set the runs scored")
FLAGS = flags.FLAGS
EPS = 1e-7


def tempered(p: np.ndarray, tau: float) -> np.ndarray:
    z = np.log(p + EPS) / tau
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def kl(t: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(np.sum(t * (np.log(t + EPS) - np.log(p + EPS)), axis=1)))


def row(name: str, p: np.ndarray, y: np.ndarray, t: np.ndarray) -> str:
    acc = np.mean(p.argmax(1) == y)
    ce = -np.mean(np.log(p[np.arange(len(y)), y] + EPS))
    agree = np.mean(p.argmax(1) == t.argmax(1))
    return (f"  {name:<28} acc {acc:.4f}  conf {p.max(1).mean():.4f}  CE {ce:.4f}  "
            f"KL(teacher||.) {kl(t, p):.4f}  agrees {agree:.4f}")


def main(argv):
    test = data.load(FLAGS.test)
    teacher = make_teacher(f"savedmodel:{FLAGS.teacher}", 10, image_shape=test.images.shape[1:])
    t = teacher.query(test.images)
    y = test.labels
    print(row("teacher", t, y, t))
    taus = np.linspace(0.5, 3.0, 26)
    for run in argv[1:]:
        folder = os.path.join(run, "unpaid_labellers")
        names = sorted(f for f in os.listdir(folder) if f.endswith(".npz"))
        probs = [np.load(os.path.join(folder, f))["eval"] for f in names]
        print(os.path.basename(run.rstrip("/")))
        for name, p in zip(names, probs):
            print(row(f"first student {name[:-4]}", p, y, t))
            best = min(taus, key=lambda tau: kl(t, tempered(p, tau)))
            print(row(f"  re-tempered, tau {best:.1f}", tempered(p, best), y, t))
        if len(probs) > 1:
            print(row("averaged", np.mean(probs, axis=0), y, t))


if __name__ == "__main__":
    app.run(main)
