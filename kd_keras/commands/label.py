r"""Sends an image source through the teacher and stores its answers in an npz file.

  python bin/label.py --config=configs/fashion_mnist.py --teacher=savedmodel:runs/t/teacher \
      --images=fashion_mnist:train[:2000] --output=runs/labels.npz --workdir=runs/label

The npz holds ``images``, ``probs`` (teacher probabilities) and ``labels`` (their argmax),
so it is itself an ``npz:`` source. Answers are cached in WORKDIR/teacher_cache.sqlite, and
--config.query.budget counts every answer paid in WORKDIR, across runs; an existing file
is replaced only if this command wrote it.
"""

from kd_keras import cli

cli.define_common_flags()
cli.define_teacher_flags()
flags = cli.flags
flags.DEFINE_string("images", None, "Image source spec to label (e.g. folder:PATH).", required=True)
flags.DEFINE_string("output", None, "npz file to write (a folder gets labels.npz inside); "
                    "a file not written by this command is never replaced.",
                    required=True)
flags.mark_flag_as_required("teacher")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from kd_keras.teachers.label_file import label_to_npz

    config = FLAGS.config
    cli.apply_teacher_flags(config)
    label_to_npz(config, FLAGS.teacher, FLAGS.images, FLAGS.output, FLAGS.workdir,
                 token_env=FLAGS.teacher_token_env, signature_name=FLAGS.teacher_signature)


def entry():
    cli.run(main)


if __name__ == "__main__":
    entry()
