"""Findings of the second attack (issue #21, medium): credentials never written, a student
that cannot be built found before paying, a user's SQLite file never taken over, a full
disk one clear error, and the lower of two budgets wins."""

import base64
import json
import sqlite3

import numpy as np
import pytest

from conftest import run_command
from kd_keras import data
from kd_keras.distill.run import run_fsbbt
from kd_keras.errors import ConfigError, TeacherError
from kd_keras.teachers import AnswerCache, CallableBackend, Teacher, backend_from_spec
from kd_keras.teachers.backends import mask_secrets

from test_distill import tiny_config, toy_teacher
from fake_http import _reply, _Server
from test_teachers import images, softmax_teacher


@pytest.mark.slow
def test_credentials_in_a_url_are_sent_as_basic_auth_and_written_nowhere(tmp_path):
    seen = []

    def handle(h):
        seen.append(h.headers.get("Authorization"))
        _reply(h, 500, b'{"error": "bad login for hunter2pass (hunter2p...)"}')
    s = _Server(handle)
    url = s.url.replace("http://", "http://alice:hunter2pass@")
    try:
        npz = tmp_path / "x.npz"
        np.savez(npz, images=images(3))
        proc = run_command("label.py", "--config=configs/fashion_mnist.py:quick",
                           "--config.data.image_shape=(6,6,1)", "--config.data.num_classes=5",
                           "--config.query.max_tries=1", f"--teacher={url}",
                           f"--images=npz:{npz}", f"--output={tmp_path}/o.npz",
                           f"--workdir={tmp_path}/w", check=False)
    finally:
        s.close()
    assert seen == ["Basic " + base64.b64encode(b"alice:hunter2pass").decode()]
    assert proc.returncode == 1 and "error: teacher at" in proc.stderr
    assert "hunter2" not in proc.stderr + proc.stdout
    written = (tmp_path / "w" / "config.json").read_text()
    assert "hunter2" not in written and "***@" in json.loads(written)["flags"]["teacher"]


def test_a_token_echoed_url_encoded_or_cut_short_is_masked():
    token = "tok/en+with=signs_123456"
    for echoed in (token, "tok%2Fen%2Bwith%3Dsigns_123456", "tok%2Fen%2Bwi", token[:9]):
        assert "***" in mask_secrets(f"denied: {echoed}!", [token])
        assert echoed not in mask_secrets(f"denied: {echoed}!", [token])
    assert mask_secrets("short tok here", [token]) == "short tok here"


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/v1/models/x",
                                 "grpc://127.0.0.1:99999/models/x", "http://h:port/v1/models/x"])
def test_a_bad_port_is_a_clear_error(url):
    with pytest.raises(TeacherError, match="bad (REST|gRPC) teacher"):
        backend_from_spec(url)


def test_a_student_that_cannot_be_built_is_found_before_any_answer(idx_dir, tmp_path):
    config = tiny_config(idx_dir)
    config.student.model = f"keras:{tmp_path}/missing.keras"
    unlabeled = data.load("fashion_mnist:train[:100]", (28, 28, 1), data_dir=idx_dir).unlabeled()
    teacher = Teacher(CallableBackend(toy_teacher), 10)
    with pytest.raises(ConfigError, match="student model file not found"):
        run_fsbbt(config, teacher, unlabeled, None, str(tmp_path / "w"))
    import keras

    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Lambda(lambda t: t * 2)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(x)))
    model.save(tmp_path / "lambda.keras")
    config.student.model = f"keras:{tmp_path}/lambda.keras"
    with pytest.raises(ConfigError, match="cannot load the student"):
        run_fsbbt(config, teacher, unlabeled, None, str(tmp_path / "w"))
    assert teacher.stats.requests == 0


def test_a_users_sqlite_file_is_not_taken_over(tmp_path):
    path = tmp_path / "teacher_cache.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE recipes (name TEXT)")
    with pytest.raises(TeacherError, match="kd_keras did not write"):
        AnswerCache(str(path))
    with sqlite3.connect(path) as db:
        assert [r[0] for r in db.execute("SELECT name FROM sqlite_master")] == ["recipes"]
    AnswerCache(str(tmp_path / "new.sqlite")).close()
    AnswerCache(str(tmp_path / "new.sqlite"))  # its own file opens again


class _FullDisk:
    """An SQLite connection whose writes fail as on a full disk."""

    def __init__(self, db):
        self.db = db

    def __getattr__(self, name):
        return getattr(self.db, name)

    def __enter__(self):
        return self.db.__enter__()

    def __exit__(self, *a):
        return self.db.__exit__(*a)

    def executemany(self, *a):
        raise sqlite3.OperationalError("database or disk is full")


def test_a_full_disk_is_one_clear_error_and_keeps_what_was_stored(tmp_path):
    cache = AnswerCache(str(tmp_path / "c.sqlite"))
    t = Teacher(CallableBackend(softmax_teacher), 5, cache=cache, batch_size=4)
    t.query(images(4))
    cache._db = _FullDisk(cache._db)
    with pytest.raises(TeacherError, match="database or disk is full; every answer stored"):
        t.query(images(4, seed=3))
    cache._db = cache._db.db
    assert len(cache) == 4


def test_the_lower_budget_of_connect_and_distill_student_wins(idx_dir, tmp_path):
    import kd_keras

    config = tiny_config(idx_dir)
    config.synthesis.sources, config.student.epochs = "real,mixup", 1
    teacher = kd_keras.connect(toy_teacher, num_classes=10, budget=150)
    unlabeled = data.load("fashion_mnist:train[:100]", (28, 28, 1), data_dir=idx_dir)
    before = config.to_dict()
    result = kd_keras.distill_student("lenet5_half", teacher, unlabeled, config=config,
                                      workdir=str(tmp_path / "w"), budget=400)
    assert result.report["budget"] == 150 and result.report["teacher_queries"] <= 150
    assert config.to_dict() == before  # the caller's config is unchanged


def test_distill_student_leaves_the_callers_teacher_as_it_was(idx_dir, tmp_path):
    import kd_keras

    config = tiny_config(idx_dir)
    config.synthesis.sources, config.student.epochs = "real,mixup", 1
    teacher = kd_keras.connect(toy_teacher, num_classes=10)
    unlabeled = data.load("fashion_mnist:train[:100]", (28, 28, 1), data_dir=idx_dir)
    result = kd_keras.distill_student("lenet5_half", teacher, unlabeled, config=config,
                                      workdir=str(tmp_path / "w"), budget=200)
    assert teacher.budget is None and result.report["teacher_queries"] <= 200
