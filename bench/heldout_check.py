"""The held-out checks of issues #12 and #23, rehearsed: a config's defaults with a
10,000-answer budget against a teacher of another architecture (an MLP for grey images, not
LeNet-5; an all-convolutional net with global pooling for colour ones, not cnn4), served
over TensorFlow Serving REST on loopback, learning from a folder of PNG (grey) or JPEG
(colour) files and evaluated on the test set written as ``--eval=npz:TEST.npz``.

  python bench/heldout_check.py --seeds=0,1,2 --out=bench/results/heldout_check.jsonl
  python bench/heldout_check.py --config=configs/mnist.py --workroot=runs/heldout_mnist \
      --seeds=0,1,2 --out=bench/results/heldout_check.jsonl

Per seed: the teacher is trained once (reused after), its test accuracy is measured
in-process on the whole test set (free: this is the bench, not the user), 2,000 training
images of the seed's draw are written as files to a folder, and ``bin/distill.py`` runs the
config against the served teacher with ``--config.query.budget=10000``. Passing means: the
student reaches the config's share of the teacher (``PASS_SHARE``), <= 10,000 training
answers, <= 1,000 evaluation answers.
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

flags.DEFINE_string("config", "configs/fashion_mnist.py", "The config whose defaults are checked.")
flags.DEFINE_list("seeds", ["0"], "Seeds: the folder's 2,000 images and the student's init.")
flags.DEFINE_string("workroot", "runs/heldout", "Folder for the teacher, images and runs.")
flags.DEFINE_string("out", "bench/results/heldout_check.jsonl", "JSONL to append to.")
flags.DEFINE_integer("budget", 10000, "Training answers the run may pay for.")
flags.DEFINE_list("overrides", [], "Extra --config.* overrides for the distill run.")
FLAGS = flags.FLAGS


# The share of its teacher a config's student must reach (issue #12: 94 %; #23: 99.4 % on
# MNIST, 88 % on CIFAR-10 (JPEG), at 10,000 answers).
PASS_SHARE = {"fashion_mnist": 0.94, "mnist": 0.994, "cifar10_jpeg": 0.88}


def _config():
    from kd_keras.config import from_file

    return from_file(FLAGS.config, ROOT)


def _teacher_model(shape, classes):
    """(model, its description): an architecture none of our configs names."""
    import keras
    from keras import layers

    if shape[-1] == 1:
        return keras.Sequential([keras.Input(shape), layers.Flatten(),
                                 layers.Dense(512, activation="relu"), layers.Dropout(0.2),
                                 layers.Dense(256, activation="relu"), layers.Dense(classes)],
                                name="mlp_teacher"), "MLP 784-512-256-10", 15
    x = inputs = keras.Input(shape)
    for width in (32, 64, 128):  # about 38 MMAC an image
        for _ in range(2):
            x = layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D()(x) if width < 128 else x
    x = layers.GlobalAveragePooling2D()(x)
    return (keras.Model(inputs, layers.Dense(classes)(x), name="allconv_teacher"),
            "all-convolutional 32-64-128 with global pooling", 20)


def foreign_teacher(path: str) -> tuple[str, float, str]:
    """Trains (or reuses) the held-out teacher; returns its SavedModel path, test accuracy
    and architecture."""
    import keras
    import numpy as np

    from kd_keras import data
    from kd_keras.export import export_classifier

    saved = os.path.join(path, "teacher")
    info = os.path.join(path, "teacher.json")
    if os.path.exists(info):
        known = json.load(open(info))
        return saved, known["test_accuracy"], known["architecture"]
    c = _config()
    train, test = data.load(c.data.train), data.load(c.data.test)
    keras.utils.set_random_seed(0)
    model, architecture, epochs = _teacher_model(c.data.image_shape, c.data.num_classes)
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    images = train.images
    if images.shape[-1] == 3:  # colour: mirrored and shifted copies, made per batch
        import tensorflow as tf
        aug = keras.Sequential([keras.layers.RandomFlip("horizontal"),
                                keras.layers.RandomTranslation(0.125, 0.125, fill_mode="reflect")])
        ds = (tf.data.Dataset.from_tensor_slices((images, train.labels)).shuffle(50000, seed=0)
              .batch(128).map(lambda x, y: (aug(x, training=True), y)).prefetch(2))
        model.fit(ds, epochs=epochs, verbose=2)
    else:
        model.fit(images, train.labels, batch_size=128, epochs=epochs, verbose=2)
    accuracy = float(np.mean(model.predict(test.images, verbose=0).argmax(1) == test.labels))
    export_classifier(model, path, "teacher")
    json.dump({"test_accuracy": accuracy, "architecture": architecture}, open(info, "w"))
    return saved, accuracy, architecture


def write_folder(folder: str, seed: int, n: int = 2000) -> None:
    """``n`` training images drawn with ``seed``, as unlabelled 8-bit PNGs (grey) or JPEGs
    (colour, quality 90)."""
    import numpy as np
    import tensorflow as tf

    from kd_keras import data

    if os.path.isdir(folder) and len(os.listdir(folder)) == n:
        return
    os.makedirs(folder, exist_ok=True)
    images = data.load(_config().data.train).images
    pick = np.random.default_rng(seed).choice(len(images), n, replace=False)
    for i, k in enumerate(pick):
        pixels = tf.cast(tf.round(images[k] * 255), tf.uint8)
        if images.shape[-1] == 3:
            blob, ext = tf.io.encode_jpeg(pixels, quality=90).numpy(), "jpg"
        else:
            blob, ext = tf.io.encode_png(pixels).numpy(), "png"
        with open(os.path.join(folder, f"img_{i:05d}.{ext}"), "wb") as f:
            f.write(blob)


def write_test(path: str) -> str:
    """The config's test set as ``npz`` (uint8 ``x``, ``y``), for ``--eval=npz:PATH``."""
    import numpy as np

    from kd_keras import data

    if not os.path.exists(path):
        test = data.load(_config().data.test)
        np.savez(path, x=np.round(test.images * 255).astype(np.uint8), y=test.labels)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv):
    del argv
    os.makedirs(FLAGS.workroot, exist_ok=True)
    name = _config().name
    saved, teacher_accuracy, architecture = foreign_teacher(
        os.path.join(FLAGS.workroot, "teacher_mlp" if name == "fashion_mnist" else "teacher"))
    test_npz = write_test(os.path.join(FLAGS.workroot, "test.npz"))
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
            done = {(r["seed"], tuple(r.get("overrides", [])), r.get("commit"))
                    for r in map(json.loads, open(FLAGS.out))
                    if r.get("config", "configs/fashion_mnist.py") == FLAGS.config}
        for seed in map(int, FLAGS.seeds):
            if (seed, tuple(FLAGS.overrides), commit) in done:
                print(f"heldout: seed {seed} at {commit} already in {FLAGS.out}", flush=True)
                continue
            folder = os.path.join(FLAGS.workroot, f"images_s{seed}")
            write_folder(folder, seed)
            tag = "".join(c if c.isalnum() else "_" for c in "-".join(FLAGS.overrides))
            workdir = os.path.join(FLAGS.workroot, f"run_{commit}{'_' + tag if tag else ''}_s{seed}")
            cmd = [sys.executable, os.path.join(ROOT, "bin", "distill.py"),
                   f"--config={FLAGS.config}",
                   f"--teacher=http://127.0.0.1:{port}/v1/models/teacher",
                   f"--unlabeled=folder:{folder}", f"--eval=npz:{test_npz}",
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
            record = {"command": "python " + " ".join(sys.argv), "config": FLAGS.config,
                      "seed": seed, "commit": commit,
                      "teacher": f"{architecture} over REST", "teacher_accuracy": teacher_accuracy,
                      "student_accuracy": report["student_accuracy"], "share": round(share, 4),
                      "teacher_queries": report["teacher_queries"],
                      "eval_queries": report["eval_queries"], "budget": FLAGS.budget,
                      "passed": bool(share >= PASS_SHARE.get(name, 0.94) and report["teacher_queries"] <= FLAGS.budget
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
