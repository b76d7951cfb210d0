"""The held-out check of issue #12, rehearsed: the default config with a 10,000-answer
budget against a teacher of another architecture (an MLP, not LeNet-5), served over
TensorFlow Serving REST on loopback, learning from a folder of PNG images.

  python bench/heldout_check.py --seeds=0,1,2 --out=bench/results/heldout_check.jsonl

Per seed: the MLP teacher is trained once (reused after), its test accuracy is measured
in-process on all 10,000 test images (free: this is the bench, not the user), the first
2,000 training images of the seed's draw are written as PNGs to a folder, and
``bin/distill.py`` runs the default config against the served teacher with
``--config.query.budget=10000``. Passing means: student >= 94 % of the teacher's accuracy,
<= 10,000 training answers, <= 1,000 evaluation answers.
"""

import json
import os
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from absl import app, flags  # noqa: E402

flags.DEFINE_list("seeds", ["0"], "Seeds: the folder's 2,000 images and the student's init.")
flags.DEFINE_string("workroot", "runs/heldout", "Folder for the teacher, images and runs.")
flags.DEFINE_string("out", "bench/results/heldout_check.jsonl", "JSONL to append to.")
flags.DEFINE_integer("budget", 10000, "Training answers the run may pay for.")
flags.DEFINE_list("overrides", [], "Extra --config.* overrides for the distill run.")
FLAGS = flags.FLAGS


def mlp_teacher(path: str) -> tuple[str, float]:
    """Trains (or reuses) the MLP teacher; returns its SavedModel path and test accuracy."""
    import keras
    import numpy as np

    from kd_keras import data
    from kd_keras.export import export_classifier

    saved = os.path.join(path, "teacher")
    info = os.path.join(path, "teacher.json")
    if os.path.exists(info):
        return saved, json.load(open(info))["test_accuracy"]
    train, test = data.load("fashion_mnist:train"), data.load("fashion_mnist:test")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(512, activation="relu"), keras.layers.Dropout(0.2),
                              keras.layers.Dense(256, activation="relu"), keras.layers.Dense(10)],
                             name="mlp_teacher")
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(train.images, train.labels, batch_size=128, epochs=15, verbose=2)
    accuracy = float(np.mean(model.predict(test.images, verbose=0).argmax(1) == test.labels))
    export_classifier(model, path, "teacher")
    json.dump({"test_accuracy": accuracy, "architecture": "MLP 784-512-256-10"}, open(info, "w"))
    return saved, accuracy


def write_folder(folder: str, seed: int, n: int = 2000) -> None:
    """``n`` training images drawn with ``seed``, as unlabelled 8-bit PNGs."""
    import numpy as np
    import tensorflow as tf

    from kd_keras import data

    if os.path.isdir(folder) and len(os.listdir(folder)) == n:
        return
    os.makedirs(folder, exist_ok=True)
    images = data.load("fashion_mnist:train").images
    pick = np.random.default_rng(seed).choice(len(images), n, replace=False)
    for i, k in enumerate(pick):
        png = tf.io.encode_png(tf.cast(tf.round(images[k] * 255), tf.uint8)).numpy()
        with open(os.path.join(folder, f"img_{i:05d}.png"), "wb") as f:
            f.write(png)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv):
    del argv
    os.makedirs(FLAGS.workroot, exist_ok=True)
    saved, teacher_accuracy = mlp_teacher(os.path.join(FLAGS.workroot, "teacher_mlp"))
    port = free_port()
    server = subprocess.Popen([sys.executable, os.path.join(ROOT, "bin", "serve_teacher.py"),
                               f"--savedmodel={saved}", f"--port={port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while True:  # the server is up when its port accepts connections
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    raise SystemExit("heldout: the teacher server did not start")
                time.sleep(0.5)
        # The default config changes with the code: a run is done for (seed, overrides, commit).
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
        done = set()
        if os.path.exists(FLAGS.out):
            done = {(r["seed"], tuple(r.get("overrides", [])), r.get("commit")) for r in
                    map(json.loads, open(FLAGS.out))}
        for seed in map(int, FLAGS.seeds):
            if (seed, tuple(FLAGS.overrides), commit) in done:
                print(f"heldout: seed {seed} at {commit} already in {FLAGS.out}", flush=True)
                continue
            folder = os.path.join(FLAGS.workroot, f"images_s{seed}")
            write_folder(folder, seed)
            tag = "".join(c if c.isalnum() else "_" for c in "-".join(FLAGS.overrides))
            workdir = os.path.join(FLAGS.workroot, f"run_{commit}{'_' + tag if tag else ''}_s{seed}")
            cmd = [sys.executable, os.path.join(ROOT, "bin", "distill.py"),
                   "--config=configs/fashion_mnist.py",
                   f"--teacher=http://127.0.0.1:{port}/v1/models/teacher",
                   f"--unlabeled=folder:{folder}", "--eval=fashion_mnist:test",
                   f"--config.query.budget={FLAGS.budget}", f"--config.seed={seed}",
                   f"--workdir={workdir}"] + [f"--config.{o}" for o in FLAGS.overrides]
            start = time.time()
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            with open(workdir + ".log", "w") as f:
                f.write(proc.stdout + proc.stderr)
            if proc.returncode:
                print(f"heldout: seed {seed} FAILED:\n{proc.stderr[-1500:]}", flush=True)
                continue
            report = json.load(open(os.path.join(workdir, "report.json")))
            share = report["student_accuracy"] / teacher_accuracy
            record = {"command": "python " + " ".join(sys.argv), "seed": seed, "commit": commit,
                      "teacher": "MLP 784-512-256-10 over REST", "teacher_accuracy": teacher_accuracy,
                      "student_accuracy": report["student_accuracy"], "share": round(share, 4),
                      "teacher_queries": report["teacher_queries"],
                      "eval_queries": report["eval_queries"], "budget": FLAGS.budget,
                      "passed": bool(share >= 0.94 and report["teacher_queries"] <= FLAGS.budget
                                     and report["eval_queries"] <= 1000),
                      "overrides": FLAGS.overrides, "seconds": round(time.time() - start, 1),
                      "finished": time.strftime("%Y-%m-%d %H:%M")}
            with open(FLAGS.out, "a") as f:
                f.write(json.dumps(record) + "\n")
            print(f"heldout: seed {seed}: student {report['student_accuracy']:.4f} / teacher "
                  f"{teacher_accuracy:.4f} = {share:.3f}, {report['teacher_queries']} training + "
                  f"{report['eval_queries']} eval answers", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    app.run(main)
