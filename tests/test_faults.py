"""Faults found by attacking the toolkit (issue #10): each test failed before its fix."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from conftest import ROOT, run_command
from kd_keras import data
from kd_keras.errors import BudgetExceededError, ConfigError, DataError, TeacherError
from kd_keras.teachers import AnswerCache, CallableBackend, Teacher, backend_from_spec
from kd_keras.teachers.server import PredictServer
from kd_keras.workdir import Workdir

from test_teachers import SHAPE, images, softmax_teacher


class _Server:
    """A tiny stdlib HTTP server whose POST handler is ``handle(handler)``; records requests."""

    def __init__(self, handle):
        self.requests = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append(dict(self.headers))
                handle(self)

            do_GET = do_POST

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}/v1/models/x"

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def _reply(h, code, body=b"", headers=()):
    h.send_response(code)
    for k, v in headers:
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


# 1. Never delete what the run did not make.
@pytest.mark.parametrize("name", ["checkpoints", "student", "teacher"])
def test_a_workdir_with_foreign_outputs_is_refused_before_any_answer(tmp_path, name):
    from kd_keras.distill.run import run_fsbbt
    from test_distill import tiny_config, toy_teacher

    work = tmp_path / "w"
    (work / name).mkdir(parents=True)
    (work / name / "precious.txt").write_text("mine")
    teacher = Teacher(CallableBackend(toy_teacher), 10)
    config = tiny_config(str(tmp_path))
    unlabeled = data.ImageSet(np.zeros((20, 28, 28, 1), np.float32), name="zeros")
    if name == "teacher":
        from kd_keras.supervised import train_teacher

        with pytest.raises(DataError, match="already holds teacher"):
            train_teacher(config, str(work))
    else:
        with pytest.raises(DataError, match=f"already holds {name}, not made by kd_keras"):
            run_fsbbt(config, teacher, unlabeled, None, str(work))
    assert (work / name / "precious.txt").read_text() == "mine"
    assert teacher.stats.requests == 0


def test_outputs_a_run_made_are_replaced_and_survive_a_failed_write(tmp_path):
    wd = Workdir(str(tmp_path / "w"))
    wd.replace_dir("student", lambda p: os.makedirs(os.path.join(p, "v1")))
    with pytest.raises(RuntimeError):
        wd.replace_dir("student", lambda p: (_ for _ in ()).throw(RuntimeError("disk full")))
    assert os.listdir(wd.join("student")) == ["v1"]  # the old output is intact
    wd.replace_dir("student", lambda p: os.makedirs(os.path.join(p, "v2")))
    assert os.listdir(wd.join("student")) == ["v2"]
    assert Workdir(wd.path).made == ["student"]  # recorded across processes


def test_workdir_that_is_a_file_or_read_only(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(DataError, match="is a file"):
        Workdir(str(f))
    with pytest.raises(DataError, match="cannot create --workdir"):
        Workdir("/proc/kd_keras_cannot_be_made")  # unwritable even for root


def test_read_only_workdir_for_a_user_without_root(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):  # root ignores permissions
            pytest.skip("running as root: a read-only folder is still writable")
        with pytest.raises(DataError, match="not writable"):
            Workdir(str(ro))
    finally:
        ro.chmod(0o700)


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


# 3. The budget covers every answer a run ever paid for.
def test_budget_holds_across_resumes(tmp_path, capsys):
    cache_path = str(tmp_path / "cache.sqlite")
    run = str(tmp_path / "run")

    def teacher():
        return Teacher(CallableBackend(softmax_teacher), 5, cache=AnswerCache(cache_path), budget=50)

    first = teacher()
    first.open_ledger(run, resume=False)
    first.query(images(40, seed=1))
    second = teacher()
    second.open_ledger(run, resume=True)
    assert "40 of 50 answers paid before; 10 left" in capsys.readouterr().out
    with pytest.raises(BudgetExceededError, match="40 already paid by this run"):
        second.query(images(20, seed=2))
    second.query(images(10, seed=3))
    assert second.paid == 50 and second.stats.sent == 10
    fresh = teacher()
    fresh.open_ledger(run, resume=False)  # a new run in the folder starts its own ledger
    assert fresh.paid == 0


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
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
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


# 5. Two processes sharing one cache pay once.
def test_two_processes_sharing_a_cache_pay_once(tmp_path):
    path = str(tmp_path / "cache.sqlite")
    sent = []

    def slow(x):
        sent.append(len(x))
        time.sleep(0.3)
        return softmax_teacher(x)

    x = images(60)
    results = {}

    def worker(owner):
        cache = AnswerCache(path)
        cache.claim = (lambda keys, _c=cache.claim: _c(keys, owner=owner))  # another process
        cache.release = (lambda keys, _r=cache.release: _r(keys, owner=owner))
        t = Teacher(CallableBackend(slow), 5, cache=cache, batch_size=20)
        results[owner] = t.query(x)

    threads = [threading.Thread(target=worker, args=(f"host:{o}",)) for o in ("1", "2")]
    for th in threads:
        th.start()
        time.sleep(0.05)
    for th in threads:
        th.join(30)
    assert sum(sent) == 60  # every image bought once between them
    np.testing.assert_array_equal(results["host:1"], results["host:2"])


def _open_cache_at(path: str, start: float) -> None:
    """A child process: opens the cache at ``start`` (the same instant as its siblings)."""
    while time.time() < start:
        pass
    try:
        AnswerCache(path)
    except TeacherError as e:
        print(e, file=sys.stderr, flush=True)
        os._exit(1)


@pytest.mark.slow
def test_processes_opening_one_new_cache_at_once_all_succeed(tmp_path):
    """Workers of one run open the shared cache at the same instant: SQLite answered the
    switch to WAL mode 'database is locked' at once (in 19 of 30 trials of two processes
    before the fix; it ended a two-worker run in CI). Here 10 trials of 4 processes."""
    import multiprocessing

    fork = multiprocessing.get_context("fork")  # the children touch SQLite only, not TF
    for trial in range(10):
        path, start = str(tmp_path / f"c{trial}.sqlite"), time.time() + 0.3
        procs = [fork.Process(target=_open_cache_at, args=(path, start)) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(90)
        assert [p.exitcode for p in procs] == [0] * 4, f"trial {trial}"


def test_a_dead_processes_claim_expires(tmp_path):
    cache = AnswerCache(str(tmp_path / "c.sqlite"))
    assert cache.claim(["a", "b"], owner="nohost:1") == (["a", "b"], [])
    assert cache.claim(["a"], owner="otherhost:2")[1] == ["a"]  # alive elsewhere: wait
    cache.claim_seconds = -1  # the claim's lifetime is over
    cache.claim(["b"], owner="nohost:1")
    assert cache.claim(["b"], owner="otherhost:2") == (["b"], [])
    import socket
    dead = f"{socket.gethostname()}:999999"  # no such process on this host
    AnswerCache(str(tmp_path / "d.sqlite")).claim(["c"], owner=dead)
    assert AnswerCache(str(tmp_path / "d.sqlite")).claim(["c"], owner="x:1") == (["c"], [])


# 6. --resume refuses a changed config.
@pytest.mark.slow
def test_resume_with_a_changed_config_is_one_clear_error(idx_dir, tmp_path):
    from kd_keras.distill.run import run_fsbbt
    from test_distill import tiny_config, toy_teacher

    config = tiny_config(idx_dir)
    config.student.epochs = 1
    unlabeled = data.load("fashion_mnist:train[:100]", (28, 28, 1), data_dir=idx_dir).unlabeled()
    cache = str(tmp_path / "cache.sqlite")
    run_fsbbt(config, Teacher(CallableBackend(toy_teacher), 10, cache=AnswerCache(cache)),
              unlabeled, None, str(tmp_path / "w"))
    config.synthesis.num_synthetic = 500
    again = Teacher(CallableBackend(toy_teacher), 10, cache=AnswerCache(cache))
    with pytest.raises(ConfigError, match=r"synthesis\.num_synthetic: 300 -> 500"):
        run_fsbbt(config, again, unlabeled, None, str(tmp_path / "w"), resume=True)
    assert again.stats.requests == 0 and again.stats.cache_hits == 0


# 7. One line instead of a traceback.
def test_bad_data_sources_are_clear_errors(tmp_path):
    folder = tmp_path / "imgs"
    (folder / "cats").mkdir(parents=True)
    (folder / "cats" / "x.png").mkdir()  # a directory with an image's name
    with pytest.raises(DataError, match="x.png"):
        data.load(f"folder:{folder}", (8, 8, 1))
    np.save(tmp_path / "a.npy", np.zeros((2, 8, 8)))
    with pytest.raises(DataError, match="not an npz"):
        data.load(f"npz:{tmp_path}/a.npy")
    np.savez(tmp_path / "obj.npz", images=np.array([np.zeros((8, 8)), None], dtype=object))
    with pytest.raises(DataError, match="obj.npz"):
        data.load(f"npz:{tmp_path}/obj.npz")
    for bad in (np.array([0, np.nan]), np.array([0, -1])):
        np.savez(tmp_path / "lab.npz", images=np.zeros((2, 8, 8), np.uint8), labels=bad)
        with pytest.raises(DataError, match="labels"):
            data.load(f"npz:{tmp_path}/lab.npz")


def test_hidden_folders_are_not_classes_and_loose_images_do_not_vanish(tmp_path):
    import tensorflow as tf

    png = tf.io.encode_png(tf.zeros((8, 8, 1), tf.uint8)).numpy()
    root = tmp_path / "imgs"
    for d in ("a", "b", ".ipynb_checkpoints"):
        (root / d).mkdir(parents=True)
        (root / d / "1.png").write_bytes(png)
    loaded = data.load(f"folder:{root}", (8, 8, 1))
    assert loaded.num_classes == 2 and len(loaded) == 2
    (root / "loose.png").write_bytes(png)
    with pytest.raises(DataError, match="loose.png"):
        data.load(f"folder:{root}", (8, 8, 1))


def test_a_corrupt_cache_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "cache.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(TeacherError, match="cannot open the answer cache"):
        AnswerCache(str(bad))


@pytest.mark.slow
def test_commands_refuse_typos_with_one_line_and_buy_nothing(tmp_path):
    server = PredictServer(softmax_teacher, "toy").start()
    npz = tmp_path / "x.npz"
    np.savez(npz, images=images(4))
    common = ["--config.data.image_shape=(6,6,1)", "--config.data.num_classes=5"]
    cases = [
        ("label.py", ["--config=configs/fashion_mnist.py:quick", "--config.query.output=prob",
                      f"--teacher={server.url}", f"--images=npz:{npz}", f"--output={tmp_path}/o"],
         "query.output must be one of"),
        ("distill.py", ["--config=configs/fashion_mnist.py:quick", "--config.student.loss=kld",
                        f"--teacher={server.url}", f"--unlabeled=npz:{npz}", "--eval="],
         "student.loss must be one of"),
        ("distill.py", ["--config=configs/fashion_mnist.py:quick", "--config.studnet.epochs=2",
                        f"--teacher={server.url}", f"--unlabeled=npz:{npz}"],
         "the config has no field studnet"),
        ("train_teacher.py", ["--config=configs/fashion_mnist.py:quick,fast"],
         "unknown config variant 'fast'"),
        ("train_teacher.py", ["--config=configs/nope.py"], "config file configs/nope.py not found"),
        ("label.py", ["--config=configs/fashion_mnist.py:quick", "--config.student.lossx=kl",
                      f"--teacher={server.url}", f"--images=npz:{npz}", f"--output={tmp_path}/o"],
         'the config has no field lossx: Did you mean "loss" instead of "lossx"?'),
    ]
    try:
        for i, (script, args, message) in enumerate(cases):
            proc = run_command(script, *args, *common, f"--workdir={tmp_path}/w{i}", check=False)
            errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
            assert proc.returncode == 1 and len(errors) == 1 and message in errors[0], proc.stderr
            assert "Traceback" not in proc.stderr
        assert server.requests == 0
    finally:
        server.close()


@pytest.mark.slow
def test_label_output_folder_says_where_it_wrote(tmp_path):
    npz = tmp_path / "x.npz"
    np.savez(npz, images=images(3))
    server = PredictServer(softmax_teacher, "toy").start()
    try:
        out = tmp_path / "outdir"
        out.mkdir()
        proc = run_command("label.py", "--config=configs/fashion_mnist.py:quick",
                           "--config.data.image_shape=(6,6,1)", "--config.data.num_classes=5",
                           f"--teacher={server.url}", f"--images=npz:{npz}", f"--output={out}",
                           f"--workdir={tmp_path}/w")
        assert f"wrote 3 answers to {out}/labels.npz" in proc.stdout
        assert np.load(out / "labels.npz")["probs"].shape == (3, 5)
    finally:
        server.close()


@pytest.mark.parametrize("script,must", [
    ("distill.py", ["--teacher", "--workdir", "--config", "--strategy", "--unlabeled", "--resume"]),
    ("label.py", ["--teacher", "--images", "--output", "--config"]),
    ("train_teacher.py", ["--config", "--workdir", "--strategy"]),
    ("serve_teacher.py", ["--savedmodel", "--port"]),
])
@pytest.mark.slow
def test_help_lists_every_flag_with_an_example(script, must):
    proc = run_command(script, "--help")
    for flag in must:
        assert f"  {flag}: " in proc.stdout, (flag, proc.stdout)
    assert f"bin/{script}" in proc.stdout  # the example command
    installed = os.path.join(os.path.dirname(sys.executable), "kd-" + script[:-3].replace("_", "-"))
    if os.path.exists(installed):  # the console script prints the same
        out = subprocess.run([installed, "--help"], capture_output=True, text=True, timeout=120)
        assert all(f"  {flag}: " in out.stdout for flag in must), out.stdout + out.stderr
