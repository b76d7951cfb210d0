r"""Sends an image source through the teacher and stores its answers in an npz file.

  python bin/label.py --config=configs/fashion_mnist.py --teacher=savedmodel:runs/t/teacher \
      --images=fashion_mnist:train[:2000] --output=runs/labels.npz --workdir=runs/label

The npz holds ``images``, ``probs`` (teacher probabilities) and ``labels`` (their argmax),
so it is itself an ``npz:`` source. Answers are cached in WORKDIR/teacher_cache.sqlite.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kd_keras import cli  # noqa: E402

cli.define_common_flags()
cli.define_teacher_flags()
flags = cli.flags
flags.DEFINE_string("images", None, "Image source spec to label (e.g. folder:PATH).", required=True)
flags.DEFINE_string("output", None, "npz file to write (a folder gets labels.npz inside).",
                    required=True)
flags.mark_flag_as_required("teacher")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    import numpy as np

    from kd_keras import data
    from kd_keras.config import write_resolved
    from kd_keras.errors import DataError
    from kd_keras.teachers import teacher_from_config
    from kd_keras.teachers.labelling import label_arrays
    from kd_keras.workdir import Workdir

    config = FLAGS.config
    cli.apply_teacher_flags(config)
    output = FLAGS.output
    if os.path.isdir(output) or output.endswith(os.sep):
        output = os.path.join(output, "labels.npz")
    if not output.endswith(".npz"):
        output += ".npz"  # what np.savez would do silently
    out_dir = os.path.dirname(os.path.abspath(output))
    if os.path.exists(out_dir) and not os.access(out_dir, os.W_OK):
        raise DataError(f"--output {output}: the folder is not writable")
    workdir = Workdir(FLAGS.workdir)
    write_resolved(config, workdir, teacher=FLAGS.teacher, images=FLAGS.images)
    source = data.load(FLAGS.images, config.data.image_shape, seed=config.seed,
                       data_dir=config.data.data_dir or None)
    teacher = teacher_from_config(FLAGS.teacher, config,
                                  workdir.join("teacher_cache.sqlite"),
                                  token_env=FLAGS.teacher_token_env,
                                  signature_name=FLAGS.teacher_signature)
    probs = label_arrays(source.images, teacher, FLAGS.images)
    os.makedirs(out_dir, exist_ok=True)
    np.savez_compressed(output, images=source.images, probs=probs, labels=probs.argmax(axis=1))
    print(f"wrote {len(probs)} answers to {output}; teacher queries sent: "
          f"{teacher.stats.sent}, cache hits: {teacher.stats.cache_hits}", flush=True)


def entry():
    cli.run(main)


if __name__ == "__main__":
    entry()
