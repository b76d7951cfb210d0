"""A run never deletes what it did not make (issue #10)."""

import os

import numpy as np
import pytest

from kd_keras import data
from kd_keras.errors import DataError
from kd_keras.teachers import CallableBackend, Teacher
from kd_keras.workdir import Workdir


# 1. Never delete what the run did not make.
@pytest.mark.parametrize("name", ["checkpoints", "student", "teacher"])
def test_a_workdir_with_foreign_outputs_is_refused_before_any_answer(tmp_path, name):
    from test_distill import tiny_config, toy_teacher

    from kd_keras.distill.run import run_fsbbt

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
