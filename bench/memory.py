"""A whole distill run's peak resident memory, by image side and answer budget.

  python bench/memory.py --sides=28,96,224 --budgets=10000,50000 \
      --out=bench/results/memory.jsonl

For each side, N = 2,000 real RGB "photos" (smooth random uint8 images, an npz), a tiny
teacher (a SavedModel) and a tiny student (a ``.keras`` file) are made once under
--workroot; then ``bin/distill.py`` runs as a user would (``configs/folder.py``, default
sources real + CutMix, ``--config.query.budget=B``, one student epoch, no eval set) in a
fresh process whose peak RSS (``wait4``'s ru_maxrss) is recorded with the run's own report,
one JSON line per run as it finishes. ``--code=DIR`` runs another checkout's
``bin/distill.py`` (e.g. a worktree of an older commit) for a before/after table;
``--limit_gib`` stops a run whose memory passes the limit (recorded as such).
"""

import json
import os
import shutil
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

flags.DEFINE_list("sides", ["28", "96", "224"], "Image sides (square RGB images).")
flags.DEFINE_list("budgets", ["10000", "50000"], "Answer budgets (M = budget - N).")
flags.DEFINE_integer("n_real", 2000, "Real images N.")
flags.DEFINE_string("workroot", "runs/bench_memory", "Folder for photos, models and runs.")
flags.DEFINE_string("out", "bench/results/memory.jsonl", "JSONL file results are appended to.")
flags.DEFINE_string("code", ROOT, "The checkout whose bin/distill.py runs.")
flags.DEFINE_string("label", "", "A name for the code measured (default: its git commit).")
flags.DEFINE_float("limit_gib", 20.0, "A run past this resident memory is stopped.")
FLAGS = flags.FLAGS


def _photos(side: int, n: int, path: str) -> None:
    """``n`` smooth random RGB images (uint8): low-frequency noise upsampled, so they
    compress and look like photos more than white noise does."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(side)
    out = np.empty((n, side, side, 3), np.uint8)
    for i in range(0, n, 100):
        small = rng.random((min(100, n - i), 8, 8, 3)).astype(np.float32)
        out[i:i + 100] = np.round(tf.image.resize(small, (side, side)).numpy() * 255)
    np.savez(path, images=out)


def _models(side: int, folder: str) -> tuple[str, str]:
    """A tiny teacher (SavedModel answering probabilities) and student (.keras, logits)."""
    import keras

    from kd_keras.export import export_classifier
    from kd_keras.workdir import Workdir

    def tiny(name):
        inputs = keras.Input((side, side, 3))
        x = keras.layers.Conv2D(8, 3, strides=max(1, side // 28), activation="relu")(inputs)
        x = keras.layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, keras.layers.Dense(10)(x), name=name)

    keras.utils.set_random_seed(side)
    wd = Workdir(folder)
    export_classifier(tiny("teacher"), wd, "teacher")
    student = os.path.join(folder, "student_init.keras")
    tiny("student").save(student)
    return os.path.join(folder, "teacher"), student


def _watch(pid: int, limit_kib: float, stopped: list) -> None:
    """Kills ``pid`` when its resident memory passes ``limit_kib``."""
    while True:
        try:
            with open(f"/proc/{pid}/status") as f:
                rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        except (OSError, StopIteration):
            return
        if rss > limit_kib:
            stopped.append(rss)
            os.kill(pid, 9)
            return
        time.sleep(0.5)


def _commit(path: str) -> str:
    proc = subprocess.run(["git", "-C", path, "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True)
    return proc.stdout.strip() or path


def main(argv):
    del argv
    os.makedirs(FLAGS.workroot, exist_ok=True)
    code = os.path.abspath(FLAGS.code)
    label = FLAGS.label or _commit(code)
    for side in map(int, FLAGS.sides):
        folder = os.path.abspath(os.path.join(FLAGS.workroot, f"side{side}"))
        photos = os.path.join(folder, "photos.npz")
        if not os.path.exists(photos):
            os.makedirs(folder, exist_ok=True)
            _photos(side, FLAGS.n_real, photos)
            _models(side, folder)
        for budget in map(int, FLAGS.budgets):
            workdir = os.path.join(folder, f"run_{label}_B{budget}")
            shutil.rmtree(workdir, ignore_errors=True)  # only ever this bench's own run
            cmd = [sys.executable, os.path.join(code, "bin", "distill.py"),
                   "--config=configs/folder.py", f"--workdir={workdir}",
                   f"--teacher=savedmodel:{os.path.join(folder, 'teacher')}",
                   f"--unlabeled=npz:{photos}", "--eval=",
                   f"--cache={os.path.join(workdir + '_cache.sqlite')}",
                   f"--config.data.image_shape=({side},{side},3)",
                   "--config.data.num_classes=10",
                   f"--config.student.model=keras:{os.path.join(folder, 'student_init.keras')}",
                   f"--config.query.budget={budget}", "--config.student.epochs=1"]
            if os.path.exists(workdir + "_cache.sqlite"):
                os.remove(workdir + "_cache.sqlite")  # a fresh cache: every answer is bought
            print(f"memory: side {side}, budget {budget}: {' '.join(cmd[1:])}", flush=True)
            start = time.time()
            log = open(workdir + ".log", "w")
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=code)
            stopped: list = []
            threading.Thread(target=_watch, args=(proc.pid, FLAGS.limit_gib * 2**20, stopped),
                             daemon=True).start()
            _, status, usage = os.wait4(proc.pid, 0)
            log.close()
            report_path = os.path.join(workdir, "report.json")
            report = json.load(open(report_path)) if os.path.exists(report_path) else None
            record = {"command": "python " + " ".join(sys.argv), "code": label, "side": side,
                      "budget": budget, "n_real": FLAGS.n_real,
                      "peak_rss_gib": round(usage.ru_maxrss / 2**20, 3),
                      "finished": report is not None and os.waitstatus_to_exitcode(status) == 0,
                      "stopped_at_gib": round(stopped[0] / 2**20, 2) if stopped else None,
                      "uint8_set_gib": round(budget * side * side * 3 / 2**30, 3),
                      "float32_set_gib": round(budget * side * side * 3 * 4 / 2**30, 3),
                      "seconds": round(time.time() - start, 1),
                      "teacher_queries": report and report.get("teacher_queries"),
                      "when": time.strftime("%Y-%m-%d %H:%M")}
            with open(FLAGS.out, "a") as f:
                f.write(json.dumps(record) + "\n")
            print(f"memory: {json.dumps(record)}", flush=True)
            if not record["finished"] and not stopped:
                with open(workdir + ".log") as f:
                    print("memory: the run FAILED:\n" + "".join(f.readlines()[-5:]), flush=True)


if __name__ == "__main__":
    app.run(main)
