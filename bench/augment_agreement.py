"""How often a teacher keeps an image's class under the student's augmentations: the
figures behind ``student.augment=auto``'s rule (kd_keras/distill/augment_check.py).

For each config's few real images (its ``data.unlabeled``, as seed 0 draws them) and its
benchmark teacher, the share of mirrored and of shifted copies the teacher gives the class it
gave the original: on all the real images, and on the 200 the run's check pays for with each
seed (that seed's real images and the check's own draw), so the rule's margin and its
sampling spread are both on record. In-process, no
answers bought.

  python bench/augment_agreement.py --out=bench/results/augment_agreement.jsonl
"""

import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

flags.DEFINE_list("runs", ["configs/fashion_mnist.py=runs/bench_fmnist",
                           "configs/mnist.py=runs/bench_mnist",
                           "configs/cifar10_jpeg.py=runs/bench_cifar"],
                  "CONFIG=WORKROOT pairs: the teacher is WORKROOT/teacher/teacher.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds whose 200-image check draw is scored.")
flags.DEFINE_string("out", "bench/results/augment_agreement.jsonl", "JSONL to append to.")
FLAGS = flags.FLAGS


def main(_):
    from kd_keras import data
    from kd_keras.config import from_file
    from kd_keras.data.rows import ImageRows
    from kd_keras.distill.augment_check import AGREE, BLANK_FRAME, CHECKS, frame_content
    from kd_keras.teachers import Teacher, backend_from_spec

    for pair in FLAGS.runs:
        config_path, workroot = pair.split("=")
        config = from_file(config_path)
        shape = tuple(config.data.image_shape)
        teacher = Teacher(backend_from_spec(os.path.join(workroot, "teacher", "teacher")),
                          config.data.num_classes, image_shape=shape)

        def real_images(seed: int):
            """The run's real images for ``seed`` (a slice is drawn class by class per seed,
            as bin/distill.py loads it) and the teacher's top-1 for each."""
            found = data.load(config.data.unlabeled, shape, seed=seed, compact=True,
                              data_dir=config.data.data_dir or None)
            rows = ImageRows(found.images)
            return rows, teacher.query(rows.raw(np.arange(len(rows)))).argmax(1)

        rows, top = real_images(0)
        record = {"config": config_path, "teacher": os.path.join(workroot, "teacher", "teacher"),
                  "n_real": len(rows), "agree_at": AGREE, "shift": float(config.student.shift),
                  "blank_frame_at": BLANK_FRAME,
                  "shift_frame_content_all": frame_content(rows.raw(np.arange(len(rows))),
                                                           config.student.shift)}
        for k, (check, (_, transform)) in enumerate(CHECKS.items()):
            every = transform(rows.raw(np.arange(len(rows))), np.random.default_rng(0),
                              config.student.shift)
            record[f"{check}_all"] = float(np.mean(teacher.query(every).argmax(1) == top))
        for k, (check, (_, transform)) in enumerate(CHECKS.items()):
            draws = []
            for seed in map(int, FLAGS.seeds):  # the check's own draw for this seed
                seed_rows, seed_top = real_images(seed)
                rng = np.random.default_rng([seed, 11, k])
                count = min(int(config.student.augment_check), len(seed_rows))
                chosen = np.sort(rng.permutation(len(seed_rows))[:count])
                copies = transform(seed_rows.raw(chosen), rng, config.student.shift)
                draws.append(float(np.mean(teacher.query(copies).argmax(1) == seed_top[chosen])))
            record[f"{check}_check_by_seed"] = draws
        record["finished"] = time.strftime("%Y-%m-%d %H:%M")
        print(json.dumps(record), flush=True)
        with open(FLAGS.out, "a") as f:
            f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    app.run(main)
