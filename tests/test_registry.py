"""One registry helper serves every extension point; a new plug-in is one registration."""

import numpy as np
import pytest

from kd_keras import data, models, synthesis
from kd_keras.distill.losses import LOSSES
from kd_keras.errors import ConfigError, DataError, TeacherError
from kd_keras.registry import Registry, RegistryError
from kd_keras.teachers import PROTOCOLS, CallableBackend, backend_from_spec


def test_a_name_registered_twice_is_an_error_and_an_unknown_one_lists_the_known():
    r = Registry("widget")
    r.register("a", len)
    r.register("a", len)  # the same object again: harmless
    with pytest.raises(RegistryError, match="a widget named 'a' is registered already"):
        r.register("a", max)
    with pytest.raises(ConfigError, match=r"unknown widget 'b'; choose one of \['a'\]"):
        r.lookup("b")

    @r.register("c")
    class C:
        pass
    assert C.name == "c" and r.lookup("c") is C and r.names() == ["a", "c"]


def test_every_extension_point_is_a_registry():
    for registry, known in ((synthesis.GENERATORS, "cutmix"), (LOSSES, "kl"),
                            (models.MODELS, "lenet5_half"), (data.SOURCES, "npz"),
                            (PROTOCOLS, "grpc")):
        assert isinstance(registry, Registry) and known in registry


def test_a_new_data_source_is_one_registration(tmp_path):
    def stripes(args, image_shape, data_dir):
        n = int(args or 4)
        return data.ImageSet(np.tile(np.arange(6, dtype=np.uint8) * 40, (n, 6, 1)), name="stripes")
    data.SOURCES.register("stripes", stripes)
    s = data.load("stripes:5", (6, 6, 1))
    assert s.images.shape == (5, 6, 6, 1) and s.images.dtype == np.float32
    with pytest.raises(DataError, match="unknown data source 'nope:1'"):
        data.load("nope:1")


def test_a_new_teacher_protocol_is_one_registration():
    PROTOCOLS.register("echo", lambda spec, options: CallableBackend(
        lambda x: np.full((len(x), 3), 1 / 3), identity=spec))
    backend = backend_from_spec("echo://anything")
    assert backend.identity == "echo://anything" and backend.predict(np.zeros((2, 1))).shape == (2, 3)
    with pytest.raises(TeacherError, match="unknown teacher spec 'ftp://x'"):
        backend_from_spec("ftp://x")
