"""Teachers answering class names with scores, one encoded image per request
(``hf+http://``, issue #25, item 3)."""

import io
import json

import numpy as np
import pytest
from fake_http import _reply, _Server
from test_teachers import SHAPE, images, softmax_teacher

from kd_keras.errors import BadAnswerError, TeacherError
from kd_keras.teachers import make_teacher, teacher_from_config

NAMES = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat"]


def name_server(names=NAMES, k=3):
    """A hosted-classifier look-alike: PNG in, the top ``k`` names with scores out."""
    from PIL import Image

    def handle(h):
        body = h.rfile_body
        assert h.headers["Content-Type"] == "image/png"
        pixels = np.asarray(Image.open(io.BytesIO(body)), np.float32) / 255
        probs = softmax_teacher(pixels.reshape(1, *SHAPE))[0]
        top = np.argsort(-probs)[:k]
        _reply(h, 200, json.dumps([{"label": names[i], "score": float(probs[i])}
                                   for i in top]).encode())
    server = _Server(handle)
    return server, server.url.replace("http://", "hf+http://").replace("/v1/models/x", "/models/x")


def test_names_become_top_k_answers_one_image_per_request():
    server, url = name_server()
    try:
        t = make_teacher(url, 5, class_names=NAMES, image_shape=SHAPE, batch_size=8)
        x = np.round(images(20) * 255) / 255  # uint8 pixels: PNG carries them exactly
        probs = t.query(x)
        assert len(server.requests) == 20 and t.paid == 20 and t.output == "topk"
        np.testing.assert_array_equal(probs.argmax(1), softmax_teacher(x).argmax(1))
        np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    finally:
        server.close()


def test_a_class_not_in_the_file_is_an_error_after_one_request(tmp_path):
    server, url = name_server(names=["T-shirt", "Trouser", "Pullover", "Dress", "Jacket"], k=5)
    try:
        t = make_teacher(url, 5, class_names=NAMES, image_shape=SHAPE, batch_size=8)
        with pytest.raises(BadAnswerError, match="the class 'Jacket'"):
            t.query(images(40))
        assert len(server.requests) == 1 and t.paid == 1  # one request, one image counted
    finally:
        server.close()


def test_the_class_file_is_read_from_the_config_and_checked(tmp_path, idx_dir):
    from test_distill import tiny_config

    config = tiny_config(idx_dir)
    config.data.num_classes, config.data.image_shape = 5, SHAPE
    (tmp_path / "names.txt").write_text("\n".join(NAMES) + "\n")
    config.query.class_names = str(tmp_path / "names.txt")
    t = teacher_from_config("hf+http://127.0.0.1:1/models/x", config, None)
    assert t.output == "topk" and t.backend.index["Coat"] == 4
    config.query.class_names = ""
    with pytest.raises(TeacherError, match="give them with --teacher_classes"):
        teacher_from_config("hf+http://127.0.0.1:1/models/x", config, None)
    (tmp_path / "four.txt").write_text("\n".join(NAMES[:4]))
    config.query.class_names = str(tmp_path / "four.txt")
    with pytest.raises(TeacherError, match="names 4 classes, the config expects 5"):
        teacher_from_config("hf+http://127.0.0.1:1/models/x", config, None)
