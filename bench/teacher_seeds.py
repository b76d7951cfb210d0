"""Bench teachers of several seeds and their accuracy on the whole test set, one JSONL
record each, so a benchmark can be run against a teacher of a given accuracy (say, the one an
issue's targets were set on, which another machine trained and none can train again).

  python bench/teacher_seeds.py --config=configs/fashion_mnist.py --seeds=10,11,12 \\
      --workroot=runs/teachers_fmnist --out=bench/results/teacher_seeds.jsonl

Each teacher goes to WORKROOT/seed<S> (trained by the command ``bench/paper_table.py`` uses,
or reused); seeds already in OUT for this config are skipped. Copy the chosen
WORKROOT/seed<S> to <bench workroot>/teacher and run ``bench/paper_table.py
--teacher_seed=<S>`` there.
"""

import json
import os
import sys
import time

from absl import app

import paper_table
from paper_table import FLAGS


def main(argv):
    del argv
    done = set()
    if os.path.exists(FLAGS.out):
        with open(FLAGS.out) as f:
            done = {r["seed"] for r in map(json.loads, f) if r["config"] == FLAGS.config}
    for seed in map(int, FLAGS.seeds):
        if seed in done:
            print(f"teacher_seeds: seed {seed} already in {FLAGS.out}", flush=True)
            continue
        teacher_dir = os.path.join(FLAGS.workroot, f"seed{seed}")
        start = time.time()
        reused = os.path.exists(os.path.join(teacher_dir, "teacher", "saved_model.pb"))
        if not reused:
            paper_table.train_teacher(teacher_dir, seed)
        accuracy = paper_table.teacher_test_accuracy(os.path.join(teacher_dir, "teacher"))
        record = {"command": "python " + " ".join(sys.argv), "config": FLAGS.config,
                  "seed": seed, "teacher_test_accuracy": accuracy,
                  "machine": paper_table.machine(), "teacher_dir": teacher_dir,
                  "trained_earlier": reused,
                  "finished": time.strftime("%Y-%m-%d %H:%M"),
                  "seconds": round(time.time() - start, 1)}
        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
        with open(FLAGS.out, "a") as f:
            f.write(json.dumps(record) + "\n")
        print(f"teacher_seeds: seed {seed}: {100 * accuracy:.2f} %", flush=True)


if __name__ == "__main__":
    app.run(main)
