"""Open Inference Protocol (KServe v2) teachers over REST, against the reference server's
v2 paths (issue #25, item 1: REST; MLServer and gRPC are not in the suite yet)."""

import json

import numpy as np
import pytest
from fake_http import _reply, _Server
from test_teachers import SHAPE, images, softmax_teacher

from kd_keras.errors import BudgetExceededError, TeacherError
from kd_keras.teachers import make_teacher
from kd_keras.teachers.open_inference import OpenInferenceBackend
from kd_keras.teachers.server import PredictServer


def test_v2_round_trip_matches_the_model_and_goes_through_the_one_wrapper():
    server = PredictServer(softmax_teacher, "toy").start()
    try:
        t = make_teacher(server.v2_url, 5, image_shape=SHAPE, batch_size=8, budget=30)
        assert isinstance(t.backend, OpenInferenceBackend)
        x = images(20)
        np.testing.assert_allclose(t.query(x), softmax_teacher(x), atol=1e-5)
        np.testing.assert_allclose(t.query(x), softmax_teacher(x), atol=1e-5)  # cached
        assert server.images_answered == 20 and t.paid == 20
        with pytest.raises(BudgetExceededError):  # the same budget as every back end
            t.query(images(20, seed=4))
    finally:
        server.close()


def test_metadata_is_read_and_an_encoded_input_is_one_clear_error():
    def handle(h):
        if h.command == "GET":
            return _reply(h, 200, json.dumps({"name": "x", "inputs": [
                {"name": "image_bytes", "datatype": "BYTES", "shape": [-1]}]}).encode())
        _reply(h, 500, b"{}")
    s = _Server(handle)
    try:
        t = make_teacher(s.url.replace("/v1/", "/v2/"), 5, image_shape=SHAPE)
        with pytest.raises(TeacherError, match="takes encoded images"):
            t.query(images(2))
        assert len(s.requests) == 1 and t.paid == 0  # the metadata only: nothing paid
    finally:
        s.close()
