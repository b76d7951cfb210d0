"""Your own images: a folder of JPEG/PNG photos (any sizes; resized to data.image_shape),
a teacher you name with --teacher, a model-zoo student. Set the shape and class count from
the command line, e.g.

  python bin/distill.py --config=configs/folder.py --teacher=grpc://host:8500/models/clf \
      --config.data.image_shape='(96,96,3)' --config.data.num_classes=10 \
      --unlabeled=folder:photos/ --eval= --config.query.budget=10000 --workdir=runs/photos

Variants as everywhere: ``:paper``, ``:quick``. Labelled eval images go in --eval (e.g.
folder:val/ with one sub-folder per class, in the teacher's class order).
"""

from kd_keras.config import base_config, select


def _settings():
    c = base_config(
        name="folder", train="", test="", unlabeled="folder:images/", image_shape=(96, 96, 3),
        num_classes=10, teacher_model="mobilenet_v3_small", student_model="mobilenet_v3_small",
        teacher_epochs=1, num_synthetic=20000, cvae_epochs=100, cvae_likelihood="normal")
    return c


def get_config(arg=None):
    return select(_settings, arg)
