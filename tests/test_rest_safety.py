"""A REST teacher's faults: redirects, echoed tokens, trickling and oversized answers,
Retry-After, Ctrl-C (issue #10)."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from conftest import ROOT, as_at_a_terminal
from fake_http import _reply, _Server
from test_teachers import SHAPE, images, softmax_teacher

from kd_keras.errors import TeacherError
from kd_keras.teachers import Teacher, backend_from_spec


# 2. The bearer token follows no redirect; echoed error bodies are masked.
def test_redirect_is_an_error_and_the_token_never_reaches_the_other_host(monkeypatch):
    secret = "tok-123-secret"
    monkeypatch.setenv("KD_TOKEN", secret)
    other = _Server(lambda h: _reply(h, 200, json.dumps(
        {"predictions": softmax_teacher(images(2)).tolist()}).encode()))
    first = _Server(lambda h: _reply(h, 302, headers=[("Location", other.url + ":predict")]))
    try:
        t = Teacher(backend_from_spec(first.url, token_env="KD_TOKEN", timeout=5), 5,
                    image_shape=SHAPE, backoff_seconds=0.001)
        with pytest.raises(TeacherError, match=r"redirected \(HTTP 302\) to http://127\.0\.0\.1"):
            t.query(images(2))
        assert other.requests == [] and len(t.cache) == 0
        assert first.requests[0]["Authorization"] == f"Bearer {secret}"
    finally:
        first.close()
        other.close()


def test_error_bodies_echoing_the_token_are_masked(monkeypatch):
    secret = "tok-456-secret"
    monkeypatch.setenv("KD_TOKEN", secret)
    s = _Server(lambda h: _reply(h, 403, json.dumps(
        {"error": f"bad token {h.headers['Authorization']}"}).encode()))
    try:
        t = Teacher(backend_from_spec(s.url, token_env="KD_TOKEN", timeout=5), 5, image_shape=SHAPE)
        with pytest.raises(TeacherError) as e:
            t.query(images(1))
        assert "HTTP 403: bad token Bearer ***" in str(e.value) and secret not in str(e.value)
    finally:
        s.close()


# 4. Deadlines, Retry-After, bounded answers, Ctrl-C.
def test_a_trickling_server_meets_the_deadline():
    def trickle(h):
        h.send_response(200)
        h.send_header("Content-Length", "100000")
        h.end_headers()
        for _ in range(100):
            try:
                h.wfile.write(b" ")
                h.wfile.flush()
            except OSError:
                return
            time.sleep(0.2)

    s = _Server(trickle)
    try:
        t = Teacher(backend_from_spec(s.url, timeout=1.0), 5, image_shape=SHAPE, max_tries=2,
                    backoff_seconds=0.01)
        start = time.time()
        with pytest.raises(TeacherError, match="no full answer within the 1s deadline"):
            t.query(images(1))
        assert time.time() - start < 5 and len(s.requests) == 2
    finally:
        s.close()


def test_retry_after_is_honoured_and_capped():
    calls = []

    def busy_then_ok(h):
        calls.append(time.time())
        if len(calls) == 1:
            _reply(h, 503, b'{"error": "busy"}', [("Retry-After", "1")])
        else:
            _reply(h, 200, json.dumps({"predictions": softmax_teacher(images(1)).tolist()}).encode())

    s = _Server(busy_then_ok)
    try:
        t = Teacher(backend_from_spec(s.url, timeout=5), 5, image_shape=SHAPE,
                    backoff_seconds=0.01, retry_after_cap=30)
        t.query(images(1))
        assert calls[1] - calls[0] >= 0.95 and t.stats.retries == 1
    finally:
        s.close()


def test_an_oversized_answer_is_refused():
    s = _Server(lambda h: _reply(h, 200, b"[" + b"0," * 5000 + b"0]"))
    try:
        backend = backend_from_spec(s.url, timeout=5)
        backend.max_answer_bytes = 1000
        with pytest.raises(TeacherError, match="more than the 1000 allowed"):
            Teacher(backend, 5, image_shape=SHAPE).query(images(1))
    finally:
        s.close()


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_during_a_hung_request_stops_within_seconds(tmp_path, signum):
    hang = threading.Event()
    s = _Server(lambda h: hang.wait(60))
    npz = tmp_path / "x.npz"
    np.savez(npz, images=images(4))
    try:
        proc = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "bin", "label.py"), "--config=configs/fashion_mnist.py:quick",
             "--config.data.image_shape=(6,6,1)", "--config.data.num_classes=5",
             "--config.query.timeout_seconds=120", f"--teacher={s.url}", f"--images=npz:{npz}",
             f"--output={tmp_path}/out.npz", f"--workdir={tmp_path}/w"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), preexec_fn=as_at_a_terminal)
        deadline = time.time() + 60
        while not s.requests and time.time() < deadline:
            time.sleep(0.2)
        assert s.requests, "the command never sent its request"
        time.sleep(0.5)
        start = time.time()
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
        assert time.time() - start < 10
        # label.py has no --resume: it says so; the request in flight is in its ledger
        assert proc.returncode == 130 and "the same command run again pays only" in err
        assert "--resume" not in err and "Traceback" not in err
        from kd_keras.teachers import AnswerCache
        ledger = AnswerCache(f"{tmp_path}/w/teacher_cache.sqlite")
        assert ledger.paid(f"label:{tmp_path}/w") == 4
    finally:
        hang.set()
        s.close()


@pytest.mark.slow
def test_a_command_stuck_after_ctrl_c_still_ends_within_the_hard_stop(tmp_path):
    # a main that swallows the interrupt (as a library stuck in a lock would keep it from
    # unwinding): the command ends anyway, with the one interrupted line and status 130
    script = tmp_path / "stuck.py"
    script.write_text(
        "import sys, time\n"
        f"sys.path.insert(0, {ROOT!r})\n"
        "from kd_keras import cli\n"
        "cli.HARD_STOP_SECONDS = 1.0\n"
        "def main(argv):\n"
        "    print('ready', flush=True)\n"
        "    while True:\n"
        "        try:\n"
        "            time.sleep(60)\n"
        "        except KeyboardInterrupt:\n"
        "            pass\n"
        "cli.run(main)\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=as_at_a_terminal)
    try:
        assert proc.stdout.readline().strip() == "ready"
        start = time.time()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert time.time() - start < 10
        assert proc.returncode == 130 and "Traceback" not in err, err
        assert err.strip().splitlines()[-1].startswith("interrupted: answers paid so far")
    finally:
        proc.kill()
