"""Trains the config's teacher on its labelled data and exports it (SavedModel + .keras).

  python bin/train_teacher.py --config=configs/fashion_mnist.py --workdir=runs/teacher
"""

from kd_keras import cli

cli.define_common_flags()
FLAGS = cli.flags.FLAGS


def main(argv):
    del argv
    from kd_keras.config import write_resolved
    from kd_keras.strategy import get_strategy
    from kd_keras.supervised import train_teacher

    write_resolved(FLAGS.config, FLAGS.workdir, strategy=FLAGS.strategy)
    train_teacher(FLAGS.config, FLAGS.workdir, get_strategy(FLAGS.strategy, FLAGS.heartbeat_seconds))


def entry():
    cli.run(main)


if __name__ == "__main__":
    entry()
