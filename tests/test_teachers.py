import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from conftest import ROOT, run_command
from kd_keras.errors import BadAnswerError, BudgetExceededError, DataError, TeacherError
from kd_keras.teachers import (AnswerCache, CallableBackend, GrpcBackend, Teacher,
                               backend_from_spec, to_probabilities)
from kd_keras.teachers.server import GrpcPredictServer, PredictServer

SERVERS = {"http": PredictServer, "grpc": GrpcPredictServer}

SHAPE = (6, 6, 1)
W = np.random.default_rng(0).normal(size=(36, 5)).astype(np.float32)


def softmax_teacher(images):
    z = images.reshape(len(images), -1) @ W
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def images(n, seed=1):
    return np.random.default_rng(seed).random((n, *SHAPE)).astype(np.float32)


@pytest.fixture(params=sorted(SERVERS))
def protocol(request):
    return request.param


@pytest.fixture
def server(protocol):
    s = SERVERS[protocol](softmax_teacher, "toy").start()
    yield s
    s.close()


def served_teacher(url, **kw):
    """A Teacher for a REST or gRPC url, with short timeouts and backoff for tests."""
    kw.setdefault("backoff_seconds", 0.001)
    return Teacher(backend_from_spec(url, timeout=5), 5, image_shape=SHAPE, **kw)


def test_rest_round_trip_matches_the_model(server):
    x = images(10)
    np.testing.assert_allclose(served_teacher(server.url).query(x), softmax_teacher(x), atol=1e-5)
    versioned = served_teacher(server.url + "/versions/3")
    np.testing.assert_allclose(versioned.query(x), softmax_teacher(x), atol=1e-5)


def test_batched_concurrent_queries_equal_one_by_one(server):
    x = images(53)
    batched = served_teacher(server.url, batch_size=7, concurrency=4)
    single = served_teacher(server.url, batch_size=1, concurrency=1)
    np.testing.assert_allclose(batched.query(x), single.query(x), atol=1e-6)
    assert batched.stats.requests == 8 and single.stats.requests == 53


def test_budget_stops_before_crossing(server):
    t = served_teacher(server.url, budget=50, batch_size=16)
    t.query(images(40))
    with pytest.raises(BudgetExceededError, match="budget of 50"):
        t.query(images(20, seed=2))
    assert server.images_answered == 40 and t.stats.sent == 40
    t.query(images(40))  # cache hits are free
    assert t.stats.sent == 40 and t.stats.cache_hits == 40


def test_a_budget_spent_exactly_by_concurrent_queries():
    """Two queries at once, to the last answer of the budget: images of one query already
    paid while its other images are still in flight count once, not twice."""
    second_batch, other_reserved = threading.Event(), threading.Event()
    calls = []

    def slow_teacher(x):
        calls.append(len(x))
        if len(calls) == 2:  # the first query's second batch waits for the other query
            second_batch.set()
            assert other_reserved.wait(10)
        elif len(calls) > 2:  # the other query got past the budget check: let the first go on
            other_reserved.set()
        return softmax_teacher(x)

    backend = CallableBackend(slow_teacher)
    backend.concurrent = True  # two requests in flight: one of each query
    t = Teacher(backend, 5, cache=AnswerCache(None), budget=8, batch_size=2, concurrency=2)
    first = threading.Thread(target=t.query, args=(images(4),))
    first.start()
    assert second_batch.wait(10)  # 2 of the first query's 4 images are paid, 2 in flight
    with t._lock:
        committed = t.paid + t._reserved
    t.query(images(4, seed=5))  # 4 + 4 = 8: within the budget, while the first is in flight
    first.join(10)
    assert committed == 4 and t.stats.sent == 8 and t._reserved == 0


def test_retries_recover_from_injected_faults(protocol):
    s = SERVERS[protocol](softmax_teacher, "toy", fail_first=3, error_rate=0.3, seed=1).start()
    try:
        t = served_teacher(s.url, batch_size=8, concurrency=2, max_tries=12)
        x = images(64)
        np.testing.assert_allclose(t.query(x), softmax_teacher(x), atol=1e-5)
        assert t.stats.retries >= 3 and t.stats.sent == 64
    finally:
        s.close()


@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}/v1/models/toy",
                                 "grpc://127.0.0.1:{port}/models/toy"])
def test_dead_endpoint_gives_up_cleanly(url):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    t = served_teacher(url.format(port=port), max_tries=3)
    with pytest.raises(TeacherError, match="unreachable.*gave up after 3 tries"):
        t.query(images(4))
    assert t.stats.requests == 3 and t.stats.sent == 0


def test_grpc_reads_the_input_name_from_the_signature():
    s = GrpcPredictServer(softmax_teacher, "toy", input_name="pixels",
                          input_shape=(None, *SHAPE)).start()
    try:
        x = images(5)
        backend = GrpcBackend(s.url, timeout=5)
        np.testing.assert_allclose(Teacher(backend, 5).query(x), softmax_teacher(x), atol=1e-5)
        assert backend.input_name == "pixels"
        named = Teacher(GrpcBackend(s.url + "?input=pixels", timeout=5), 5)
        np.testing.assert_allclose(named.query(x), softmax_teacher(x), atol=1e-5)
        with pytest.raises(TeacherError, match="takes one input 'pixels', got \\['images'\\]"):
            Teacher(GrpcBackend(s.url + "?input=images", timeout=5), 5).query(x)
        with pytest.raises(TeacherError, match="no signature 'other'"):
            Teacher(GrpcBackend(s.url, timeout=5, signature_name="other"), 5).query(x)
        with pytest.raises(TeacherError, match="NOT_FOUND: Servable not found"):
            Teacher(GrpcBackend(s.url.replace("toy", "nope"), timeout=5), 5).query(x)
        assert s.images_answered == 10
    finally:
        s.close()
    with pytest.raises(TeacherError, match="bad gRPC teacher.*grpc://host:port/models/NAME"):
        backend_from_spec("grpc://127.0.0.1/teacher")


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 and its key, made by openssl."""
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
                   check=True, capture_output=True)
    return d / "cert.pem", d / "key.pem"


def test_grpcs_serves_over_tls_trusting_a_private_ca(tls_files, monkeypatch):
    cert, key = tls_files
    monkeypatch.setenv("KD_TEST_TOKEN", "tls-token")
    s = GrpcPredictServer(softmax_teacher, "toy", token="tls-token",
                          tls=(key.read_bytes(), cert.read_bytes())).start()
    try:
        assert s.url.startswith("grpcs://127.0.0.1:")
        x = images(6)
        t = Teacher(backend_from_spec(f"{s.url}?ca={cert}", timeout=5, token_env="KD_TEST_TOKEN"), 5)
        np.testing.assert_allclose(t.query(x), softmax_teacher(x), atol=1e-5)
        # Without TLS the server cannot be reached; it is the same failure as a dead endpoint.
        plain = served_teacher(s.url.replace("grpcs://", "grpc://"), max_tries=2)
        with pytest.raises(TeacherError, match="unreachable.*gave up after 2 tries"):
            plain.query(x)
        assert s.images_answered == 6
    finally:
        s.close()
    with pytest.raises(TeacherError, match=r"cannot read the gRPC teacher's CA file \(\?ca=\) /nope"):
        backend_from_spec("grpcs://127.0.0.1:1/models/toy?ca=/nope/ca.pem")


@pytest.mark.parametrize("predict,error,message", [
    (lambda x: np.full((len(x), 5), np.nan), BadAnswerError, "NaN"),
    (lambda x: softmax_teacher(x)[:, :3], BadAnswerError, "3 classes, the config expects 5"),
    (lambda x: x.reshape(-1, 7), TeacherError, "INVALID_ARGUMENT: ValueError: cannot reshape"),
])
def test_bad_grpc_answers_are_clear_errors(predict, error, message):
    s = GrpcPredictServer(predict, "toy").start()
    try:
        cache = AnswerCache(None)
        with pytest.raises(error, match=message):
            served_teacher(s.url, cache=cache).query(images(3))
        assert len(cache) == 0
    finally:
        s.close()


@pytest.mark.parametrize("bad,message", [
    (lambda x: softmax_teacher(x)[:, :4], "4 classes, the config expects 5"),
    (lambda x: np.full((len(x), 5), np.nan), "NaN"),
    (lambda x: softmax_teacher(x) - 0.5, "negative probabilities"),
    (lambda x: softmax_teacher(x)[:-1], "rows for"),
    (lambda x: softmax_teacher(x) * 2, "do not sum to 1"),
    (lambda x: "hello", "not a numeric array"),
])
def test_malformed_answers_are_rejected_and_not_cached(bad, message):
    cache = AnswerCache(None)
    t = Teacher(CallableBackend(bad), 5, cache=cache)
    with pytest.raises(BadAnswerError, match=message):
        t.query(images(6))
    assert len(cache) == 0


class _RawHandler(BaseHTTPRequestHandler):
    body, code = b"", 200

    def log_message(self, *a):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(self.code)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)


@pytest.mark.parametrize("code,body,error,message", [
    (200, b"<html>oops</html>", BadAnswerError, "not JSON"),
    (200, b'{"outputs": []}', BadAnswerError, "without 'predictions'"),
    (200, b'{"predictions": [[0.5, 0.5]]}', BadAnswerError, "2 classes"),
    (400, b'{"error": "Input to reshape is a tensor with 3 values"}', TeacherError,
     "HTTP 400: Input to reshape"),
])
def test_malformed_http_answers(code, body, error, message):
    handler = type("H", (_RawHandler,), {"body": body, "code": code})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        t = served_teacher(f"http://127.0.0.1:{srv.server_address[1]}/v1/models/x")
        with pytest.raises(error, match=message):
            t.query(images(1))
    finally:
        srv.shutdown()
        srv.server_close()


def test_cache_makes_a_second_run_send_nothing(server, tmp_path):
    path = str(tmp_path / "cache.sqlite")
    x = np.concatenate([images(30), images(30)[:5]])  # duplicates are sent once
    first = served_teacher(server.url, cache=AnswerCache(path))
    a = first.query(x)
    assert first.stats.sent == 30 and server.images_answered == 30
    second = served_teacher(server.url, cache=AnswerCache(path))
    np.testing.assert_array_equal(second.query(x), a)
    assert second.stats.sent == 0 and server.images_answered == 30
    other_teacher = served_teacher(server.url + "/versions/2", cache=AnswerCache(path))
    other_teacher.query(x[:3])  # another teacher's answers are not reused
    assert other_teacher.stats.sent == 3


def test_wrong_image_shape_is_refused_before_sending(server):
    t = served_teacher(server.url)
    with pytest.raises(DataError, match=r"shape \(7, 7, 1\), the teacher takes \(6, 6, 1\)"):
        t.query(np.zeros((2, 7, 7, 1), np.float32))
    assert server.requests == 0


def test_output_modes():
    x = images(4)
    logits = x.reshape(4, -1) @ W
    np.testing.assert_allclose(to_probabilities(logits, "logits", 4, 5), softmax_teacher(x), atol=1e-5)
    np.testing.assert_array_equal(to_probabilities([2, 0, 4, 1], "label", 4, 5),
                                  np.eye(5)[[2, 0, 4, 1]])
    with pytest.raises(BadAnswerError, match="integers in"):
        to_probabilities([2, 0, 5, 1], "label", 4, 5)
    rows = [{"classes": [1, 3], "scores": [0.6, 0.1]}] * 4
    p = to_probabilities(rows, "topk", 4, 5)
    np.testing.assert_allclose(p[0], [0.1, 0.6, 0.1, 0.1, 0.1], atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("refusal", ["401", "UNAUTHENTICATED"])
def test_token_is_sent_and_never_leaks(tmp_path, refusal, monkeypatch):
    secret = "s3cret-token-value"
    monkeypatch.setenv("KD_TEST_TOKEN", secret)
    server = PredictServer if refusal == "401" else GrpcPredictServer
    s = server(softmax_teacher, "toy", token=secret).start()
    try:
        with pytest.raises(TeacherError) as e:
            served_teacher(s.url).query(images(2))
        assert refusal in str(e.value) and secret not in str(e.value)
        ok = Teacher(backend_from_spec(s.url, token_env="KD_TEST_TOKEN"), 5, image_shape=SHAPE)
        assert ok.query(images(2)).shape == (2, 5) and secret not in ok.identity
        npz = tmp_path / "x.npz"
        np.savez(npz, images=images(12))
        out, work = tmp_path / "labels.npz", tmp_path / "work"
        proc = run_command("label.py", "--config=configs/fashion_mnist.py:quick",
                           "--config.data.image_shape=(6,6,1)", "--config.data.num_classes=5",
                           f"--teacher={s.url}", "--teacher_token_env=KD_TEST_TOKEN",
                           f"--images=npz:{npz}", f"--output={out}", f"--workdir={work}",
                           env={"KD_TEST_TOKEN": secret})
        assert "wrote 12 answers" in proc.stdout
        labelled = np.load(out)
        np.testing.assert_allclose(labelled["probs"], softmax_teacher(images(12)), atol=1e-5)
        for f in os.listdir(work):
            assert secret.encode() not in (work / f).read_bytes()
        assert secret not in proc.stdout + proc.stderr
    finally:
        s.close()


@pytest.mark.slow
def test_savedmodel_and_keras_backends_and_serve_command(tmp_path, tls_files):
    cert, key = tls_files
    import keras

    from kd_keras.export import export_classifier

    inputs = keras.Input(SHAPE)
    model = keras.Model(inputs, keras.layers.Dense(5)(keras.layers.Flatten()(inputs)))
    export_classifier(model, str(tmp_path), "sm")
    x = images(9)
    expected = keras.ops.convert_to_numpy(keras.ops.softmax(model(x)))
    sm = Teacher(backend_from_spec(f"savedmodel:{tmp_path}/sm"), 5)
    np.testing.assert_allclose(sm.query(x), expected, atol=1e-5)
    ks = Teacher(backend_from_spec(f"keras:{tmp_path}/sm.keras"), 5, output="logits")
    np.testing.assert_allclose(ks.query(x), expected, atol=1e-5)
    with pytest.raises(TeacherError, match="not found"):
        backend_from_spec(f"savedmodel:{tmp_path}/nope")
    with pytest.raises(TeacherError,
                       match=r"takes float32 \(None, 6, 6, 1\).*refused images \[2, 5, 5, 1\]"):
        Teacher(backend_from_spec(f"savedmodel:{tmp_path}/sm"), 5).query(np.random.rand(2, 5, 5, 1))
    with pytest.raises(TeacherError, match=r"takes inputs \(None, 6, 6, 1\).*refused"):
        Teacher(backend_from_spec(f"keras:{tmp_path}/sm.keras"), 5).query(np.random.rand(2, 5, 5, 1))

    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "bin", "serve_teacher.py"),
                             f"--savedmodel={tmp_path}/sm", "--port=0", "--grpc_port=0",
                             "--model_name=t", f"--tls_cert={cert}", f"--tls_key={key}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        rest = proc.stdout.readline().split(" at ")[1].split(":predict")[0]
        grpc = proc.stdout.readline().split(" at ")[1].strip()
        assert rest.startswith("http://") and grpc.startswith("grpcs://") and grpc.endswith("/t")
        for url in (rest, f"{grpc}?ca={cert}"):
            served = Teacher(backend_from_spec(url), 5)
            np.testing.assert_allclose(served.query(x), expected, atol=1e-5)
        busy = run_command("serve_teacher.py", f"--savedmodel={tmp_path}/sm",
                           f"--port={rest.split(':')[2].split('/')[0]}", check=False)
        assert busy.returncode == 1 and "error: cannot serve REST on 127.0.0.1:" in busy.stderr
        assert "Traceback" not in busy.stderr
        no_key = run_command("serve_teacher.py", f"--savedmodel={tmp_path}/sm", "--grpc_port=0",
                             f"--tls_cert={cert}", f"--tls_key={tmp_path}/missing.pem", check=False)
        assert no_key.returncode == 1 and "Traceback" not in no_key.stderr
        assert f"error: cannot read --tls_key {tmp_path}/missing.pem" in no_key.stderr
    finally:
        proc.kill()
        proc.wait()


def test_8_bit_images_are_asked_as_pixels_k_over_255(tmp_path):
    # a uint8 batch once reached the teacher as 0..255 floats: wrong answers, paid for
    seen = []

    def answer(x):
        seen.append(np.array(x))
        return softmax_teacher(x)

    eight_bit = (images(6) * 255).round().astype(np.uint8)
    t = Teacher(CallableBackend(answer), 5, cache=AnswerCache(str(tmp_path / "c.sqlite")))
    from_bytes = t.query(eight_bit)
    assert seen[0].dtype == np.float32 and seen[0].max() <= 1.0
    np.testing.assert_allclose(from_bytes, softmax_teacher(eight_bit / np.float32(255)),
                               rtol=1e-5)
    t.query(eight_bit.astype(np.float32) / 255.0)  # the same images as floats: cached
    assert t.stats.sent == 6 and len(seen) == 1
