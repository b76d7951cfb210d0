"""The Python API: connect to a teacher, distill a Keras model, get it back."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import kd_keras
import kd_keras.api
from kd_keras.errors import ConfigError
from kd_keras.teachers.server import PredictServer

W = np.random.default_rng(3).normal(size=(3, 10)).astype(np.float32)


def colour_teacher(images):
    """Answers by mean colour: a teacher any small student can learn from."""
    z = images.reshape(len(images), -1, 3).mean(1) @ W * 8
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def small_student(shape=(32, 32, 3), head=None):
    inputs = keras.Input(shape)
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3, activation="relu")(inputs))
    return keras.Model(inputs, keras.layers.Dense(10, activation=head)(h))


def quick_config():
    """The API's default config, shrunk so a test takes seconds."""
    c = kd_keras.api.default_config((32, 32, 3), 10)
    c.cvae.epochs, c.selection.probe_epochs = 2, 1
    c.unpaid.count = 0  # the default's first students: tests/test_unpaid.py
    return c


class _Count(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = 0

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1


@pytest.mark.slow
def test_api_end_to_end_with_a_served_teacher_and_a_folder_of_mixed_photos(tmp_path):
    """A keras.applications student, an RGB folder of mixed sizes, a REST teacher."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(40):
        size = (int(rng.integers(20, 60)), int(rng.integers(20, 60)))
        pixels = (rng.random((*size, 1)) * rng.random(3) * 255).astype(np.uint8)
        encode = tf.io.encode_png if i % 2 else tf.io.encode_jpeg
        (folder / f"{i}.{'png' if i % 2 else 'jpg'}").write_bytes(encode(pixels).numpy())
    server = PredictServer(colour_teacher, "clf").start()
    try:
        teacher = kd_keras.connect(server.url, num_classes=10, budget=400,
                                   cache=str(tmp_path / "answers.sqlite"))
        student = keras.applications.MobileNetV3Small(
            input_shape=(32, 32, 3), classes=10, weights=None, include_top=True,
            classifier_activation=None, minimalistic=True)
        counter = _Count()
        result = kd_keras.distill_student(student, teacher, images=str(folder),
                                          workdir=str(tmp_path / "run"), epochs=2, config=quick_config(),
                                          callbacks=[counter])
    finally:
        server.close()
    assert result.student is student and counter.epochs == 2
    assert len(result.history.history["loss"]) == 2
    assert result.report["teacher_queries"] <= 400 and result.report["n_real"] == 40
    assert server.images_answered == result.report["teacher_queries"]
    loaded = tf.saved_model.load(str(tmp_path / "run" / "student"))
    assert loaded.serve(tf.zeros((2, 32, 32, 3))).shape == (2, 10)
    assert json.load(open(tmp_path / "run" / "report.json"))["budget"] == 400


def test_api_with_arrays_a_callable_teacher_and_clear_refusals(tmp_path):
    images = np.random.default_rng(1).random((30, 32, 32, 3)).astype(np.float32)
    teacher = kd_keras.connect(colour_teacher, num_classes=10)
    result = kd_keras.distill_student(small_student(), teacher, images=images,
                                      workdir=str(tmp_path / "a"), epochs=1, num_synthetic=60,
                                      config=quick_config())
    # 30 real, mirrored and shifted copies of those 30 (the teacher asked whether each keeps
    # the class; no budget caps the checks), 60 synthetic
    assert result.report["images_per_source"] == {"real": 30, "mirrored": 30, "shifted": 30,
                                                  "cutmix": 60}
    ds = tf.data.Dataset.from_tensor_slices(images).batch(8)
    again = kd_keras.distill_student(small_student(), teacher, images=ds,
                                     workdir=str(tmp_path / "b"), epochs=1, num_synthetic=60,
                                     config=quick_config())
    assert again.report["teacher_queries"] == 150 and teacher.stats.cache_hits >= 30
    with pytest.raises(ConfigError, match="ends in a softmax"):
        kd_keras.distill_student(small_student(head="softmax"), teacher, images=images,
                                 workdir=str(tmp_path / "c"), epochs=1)
    assert not os.path.exists(tmp_path / "c" / "student")


def test_only_the_student_is_exported(tmp_path):
    """The SavedModel's variables hold the student's parameters and nothing more (no
    teacher, no optimizer state): their size is the parameter count in float32."""
    images = np.random.default_rng(2).random((20, 32, 32, 3)).astype(np.float32)
    student = small_student()
    result = kd_keras.distill_student(student, kd_keras.connect(colour_teacher, num_classes=10),
                                      images=images, workdir=str(tmp_path / "w"), epochs=1,
                                      num_synthetic=20, config=quick_config())
    variables = tmp_path / "w" / "student" / "variables"
    size = sum(f.stat().st_size for f in variables.iterdir() if f.name.startswith("variables.data"))
    params = student.count_params() * 4
    assert params <= size < params + 16 * 1024, (size, params)
    assert result.report["images_per_source"]["real"] == 20
