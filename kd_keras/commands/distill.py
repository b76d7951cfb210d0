r"""FS-BBT end to end: label few real images, grow them with MixUp and a CVAE, label the
synthetic images through the teacher, distill the student and export it.

  python bin/distill.py --config=configs/fashion_mnist.py --teacher=savedmodel:runs/t/teacher \
      --unlabeled=fashion_mnist:train[:2000] --eval=fashion_mnist:test --workdir=runs/fsbbt

Without --teacher, a teacher is first trained on the config's labelled data (or reused
from WORKDIR/teacher). Multi-worker (--strategy=multi_worker, TF_CONFIG): run the same
command on every worker, each with its own --workdir and one --shared_dir they all reach;
only the chief sends queries and publishes the labelled training set there. Outputs:
WORKDIR/student/ (SavedModel), WORKDIR/student.keras, WORKDIR/report.json,
WORKDIR/config.json, TensorBoard logs in WORKDIR/tb/.
"""

import os
import sys

from kd_keras import cli

cli.define_common_flags()
cli.define_teacher_flags()
flags = cli.flags
flags.DEFINE_string("unlabeled", None, "The few unlabeled images (source spec); default: the "
                    "config's data.unlabeled, e.g. fashion_mnist:train[:2000].")
flags.DEFINE_string("eval", None, "Labelled images to report on, never trained on; default: "
                    "the config's data.test. Pass --eval= to skip evaluation.")
flags.DEFINE_string("cache", None, "SQLite file of teacher answers; default "
                    "WORKDIR/teacher_cache.sqlite. Share it between runs to pay once.")
flags.DEFINE_bool("resume", False, "Continue an interrupted run in WORKDIR: reuse its CVAE and "
                  "student checkpoint (teacher answers are always reused from the cache).")
flags.DEFINE_string("shared_dir", None, "Multi-worker runs: a folder every worker reaches "
                    "through tf.io.gfile (local, gs://, hdfs://); the chief writes the labelled "
                    "training set there once and the others read it, so no --cache file needs "
                    "sharing (SQLite does not work on network filesystems).")
flags.DEFINE_float("follow_seconds", 3600.0, "Multi-worker runs: how long a non-chief worker "
                   "waits for the chief's training set in --shared_dir (or its answers in a "
                   "shared --cache); a chief whose process is gone ends the wait within seconds.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from kd_keras import data
    from kd_keras.config import write_resolved
    from kd_keras.distill.run import run_fsbbt
    from kd_keras.errors import KdKerasError
    from kd_keras.strategy import chief_watch, get_strategy, is_chief
    from kd_keras.supervised import train_teacher
    from kd_keras.distill.run import OUTPUTS
    from kd_keras.teachers import teacher_from_config
    from kd_keras.workdir import Workdir

    config = FLAGS.config
    cli.apply_teacher_flags(config)
    if any(a.startswith("--config.synthesis.num_synthetic") for a in sys.argv):
        with config.unlocked():  # the user chose M: a budget must not change it
            config.synthesis.fixed_count = True
    workdir = Workdir(FLAGS.workdir)
    workdir.check_outputs(OUTPUTS + ("config.json",))
    unlabeled_spec = FLAGS.unlabeled or config.data.unlabeled
    eval_spec = config.data.test if FLAGS.eval is None else FLAGS.eval
    write_resolved(config, workdir, teacher=FLAGS.teacher, unlabeled=unlabeled_spec,
                   eval=eval_spec, strategy=FLAGS.strategy, resume=FLAGS.resume)
    strategy = get_strategy(FLAGS.strategy, FLAGS.heartbeat_seconds)
    spec = FLAGS.teacher
    if spec is None and FLAGS.strategy == "multi_worker":
        raise KdKerasError("multi-worker runs need --teacher (the same spec on every worker)")
    if spec is None:
        own = workdir.join("teacher")
        if workdir.owns("teacher") and os.path.exists(os.path.join(own, "saved_model.pb")):
            print(f"teacher: reusing {own}", flush=True)
        else:
            train_teacher(config, workdir, strategy)
        spec = f"savedmodel:{own}"
    load = lambda s, **kw: data.load(s, config.data.image_shape, seed=config.seed,  # noqa: E731
                                     data_dir=config.data.data_dir or None, **kw)
    unlabeled = load(unlabeled_spec, compact=True)  # held as uint8 when 8-bit
    if config.student.targets != "true_labels":
        unlabeled = unlabeled.unlabeled()  # the teacher's answers are all the student sees
    eval_set = load(eval_spec) if eval_spec else None
    teacher = teacher_from_config(spec, config,
                                  FLAGS.cache or workdir.join("teacher_cache.sqlite"),
                                  token_env=FLAGS.teacher_token_env,
                                  signature_name=FLAGS.teacher_signature)
    chief = is_chief(strategy)
    if not chief and not FLAGS.shared_dir:
        # One worker pays: the others read its answers from the shared --cache.
        teacher.follow_seconds = FLAGS.follow_seconds
        teacher.follow_check = chief_watch(strategy)
        print("teacher: not the chief worker; reading the chief's answers from the cache",
              flush=True)
    run_fsbbt(config, teacher, unlabeled, eval_set, workdir, strategy, resume=FLAGS.resume,
              shared_dir=FLAGS.shared_dir, chief=chief, wait_seconds=FLAGS.follow_seconds)


def entry():
    cli.run(main)


if __name__ == "__main__":
    entry()
