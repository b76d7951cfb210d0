import numpy as np
import pytest

from kd_keras import models
from kd_keras.errors import ConfigError

CASES = [("lenet5", "lenet5_half", (28, 28, 1), 10),
         ("alexnet", "alexnet_half", (32, 32, 3), 10),
         ("resnet32", "resnet20", (32, 32, 3), 100)]


@pytest.mark.parametrize("teacher,student,shape,classes", CASES)
def test_builders_output_logits_and_students_are_smaller(teacher, student, shape, classes):
    t = models.build(teacher, shape, classes)
    s = models.build(student, shape, classes)
    x = np.random.default_rng(0).random((2, *shape), dtype=np.float32)
    assert t(x).shape == (2, classes) and s(x).shape == (2, classes)
    assert s.count_params() < t.count_params()


def test_lenet_half_and_wide_have_half_and_twice_the_channels():
    t, s = models.build("lenet5", (28, 28, 1), 10), models.build("lenet5_half", (28, 28, 1), 10)
    widths = lambda m: [l.filters if hasattr(l, "filters") else l.units  # noqa: E731
                        for l in m.layers if hasattr(l, "filters") or hasattr(l, "units")]
    assert widths(t) == [6, 16, 120, 84, 10] and widths(s) == [3, 8, 60, 42, 10]
    assert widths(models.build("lenet5_wide", (28, 28, 1), 10)) == [12, 32, 240, 168, 10]


def test_resnet_depths():
    conv_count = lambda m: sum("conv2d" in l.name for l in m.layers)  # noqa: E731
    # ResNet-n has n-2 convs on the main path plus 2 projection shortcuts.
    assert conv_count(models.build("resnet20", (32, 32, 3), 10)) == 19 + 2
    assert conv_count(models.build("resnet32", (32, 32, 3), 10)) == 31 + 2


def test_lenet_on_small_images():
    assert models.build("lenet5_half", (8, 8, 1), 10)(np.zeros((1, 8, 8, 1))).shape == (1, 10)


def test_unknown_model_name():
    with pytest.raises(ValueError, match="unknown model"):
        models.build("vgg", (28, 28, 1), 10)


@pytest.mark.parametrize("name,shape", [("mobilenet_v3_small", (28, 28, 1)),
                                        ("efficientnet_b0", (16, 16, 3))])
def test_applications_by_name_take_small_images_and_answer_logits(name, shape):
    import numpy as np

    model = models.build(name, shape, 7)
    assert model.input_shape[1:] == shape and model.output_shape[-1] == 7
    assert model.layers[-1].activation.__name__ == "linear"  # logits, never a softmax
    out = model(np.random.default_rng(0).random((2, *shape)).astype("float32"))
    assert out.shape == (2, 7)
    scale = [l for l in model.layers if l.__class__.__name__ == "Rescaling"]
    assert scale and scale[0].scale == 255.0  # these applications expect pixels in [0, 255]
    assert any(l.__class__.__name__ == "Resizing" for l in model.layers)  # below 32: resized


def test_a_users_keras_file_as_student(tmp_path):
    import keras

    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, keras.layers.Dense(4)(keras.layers.Flatten()(inputs)))
    model.save(tmp_path / "mine.keras")
    loaded = models.build(f"keras:{tmp_path}/mine.keras", (8, 8, 1), 4)
    assert loaded.count_params() == model.count_params()
    with pytest.raises(ConfigError, match="answers 4 classes, the teacher 5"):
        models.build(f"keras:{tmp_path}/mine.keras", (8, 8, 1), 5)
