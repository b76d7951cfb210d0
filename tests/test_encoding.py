"""Teachers that take encoded images (PNG, JPEG): REST ``{"b64": …}``, gRPC ``DT_STRING``;
the student trains on the pixels the teacher decoded (issue #25, item 2)."""

import numpy as np
import pytest
from test_teachers import SHAPE, images, softmax_teacher

from kd_keras.errors import TeacherError
from kd_keras.teachers import make_teacher
from kd_keras.teachers.encoding import as_seen, decode, encode
from kd_keras.teachers.server import GrpcPredictServer, PredictServer


def test_png_is_lossless_for_8_bit_pixels_and_jpeg_is_what_is_decoded():
    x = np.round(images(4) * 255) / 255
    np.testing.assert_array_equal(as_seen(x, "png"), x)
    assert as_seen(x, "none") is x
    jpeg = encode(x[0], "jpeg")
    np.testing.assert_array_equal(decode(jpeg, 1), as_seen(x[:1], "jpeg")[0])


@pytest.mark.parametrize("protocol", ["http", "grpc"])
@pytest.mark.parametrize("encoding", ["png", "jpeg"])
def test_encoded_images_are_answered_about_the_pixels_the_teacher_decodes(protocol, encoding):
    seen_by_server = []

    def teacher_fn(x):
        seen_by_server.append(x)
        return softmax_teacher(x)
    server = (PredictServer(teacher_fn, "toy") if protocol == "http" else
              GrpcPredictServer(teacher_fn, "toy", encoded=True)).start()
    try:
        t = make_teacher(server.url, 5, image_shape=SHAPE, encoding=encoding)
        x = images(10)
        seen, probs = t.query_seen(x)
        decoded = np.concatenate(seen_by_server)
        np.testing.assert_array_equal(seen, decoded)  # the student's images are the teacher's
        np.testing.assert_allclose(probs, softmax_teacher(decoded), atol=1e-5)
        again, _ = t.query_seen(x)  # cached under the decoded pixels: nothing paid again
        assert t.paid == 10 and len(seen_by_server) == 1
        np.testing.assert_array_equal(again, seen)
    finally:
        server.close()


def test_a_string_input_without_an_encoding_is_one_clear_error():
    server = GrpcPredictServer(softmax_teacher, "toy", encoded=True).start()
    try:
        t = make_teacher(server.url, 5, image_shape=SHAPE)
        with pytest.raises(TeacherError, match="set --config.query.encoding=png"):
            t.query(images(2))
        assert t.paid == 0
    finally:
        server.close()
    with pytest.raises(TeacherError, match="cannot be sent encoded images"):
        make_teacher("hf+http://127.0.0.1:1/models/x", 5, class_names=list("abcde"),
                     encoding="png")


def test_a_run_with_a_jpeg_teacher_trains_on_the_decoded_pixels(idx_dir, tmp_path):
    from test_distill import tiny_config, toy_teacher

    from kd_keras import data
    from kd_keras.distill.labelled import build_training_set
    from kd_keras.distill.preflight import preflight

    sent = []

    def teacher_fn(x):
        sent.append(x)
        return toy_teacher(x)
    server = PredictServer(teacher_fn, "toy").start()
    try:
        config = tiny_config(idx_dir)
        config.synthesis.sources, config.query.encoding = "real,cutmix", "jpeg"
        config.student.augment_check = 20  # the augmentation checks' copies go as JPEG too
        unlabeled = data.load("fashion_mnist:train[:100]", (28, 28, 1), data_dir=idx_dir).unlabeled()
        t = make_teacher(server.url, 10, image_shape=(28, 28, 1), encoding="jpeg")
        ctx = preflight(config, t, unlabeled, None, str(tmp_path / "w"))
        labelled, _ = build_training_set(ctx)
        batches = list(labelled.dataset(64, seed=0).as_numpy_iterator())
        trained_on = np.concatenate([x for x, _ in batches])  # what the student trains on
        teacher_saw = np.concatenate(sent)
        assert len(trained_on) == len(teacher_saw) == 100 + 2 * 20 + 300
        # every training image is, bit for bit, an image the teacher answered about
        as_rows = {row.tobytes() for row in teacher_saw}
        assert all(row.tobytes() in as_rows for row in trained_on)
        real = labelled.parts["real"].candidates.rows.images
        assert real.dtype == np.uint8  # decoded JPEG pixels, held compactly
        assert not np.array_equal(real / 255.0, unlabeled.images)  # JPEG changed pixels
    finally:
        server.close()
