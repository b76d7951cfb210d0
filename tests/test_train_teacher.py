import json
import os

import numpy as np
import pytest

from conftest import run_command
from kd_keras.data import load
from kd_keras.export import load_serving


@pytest.mark.slow
def test_train_teacher_command_exports_a_serving_savedmodel(idx_dir, tmp_path):
    workdir = str(tmp_path / "run")
    proc = run_command("train_teacher.py", "--config=configs/fashion_mnist.py:quick",
                       f"--config.data.data_dir={idx_dir}", "--config.teacher.epochs=3",
                       f"--workdir={workdir}")
    assert "test accuracy" in proc.stdout
    acc = float(proc.stdout.split("test accuracy ")[1].split()[0])
    assert acc > 0.5  # the tiny patterned set is easy; chance is 0.1
    resolved = json.load(open(os.path.join(workdir, "config.json")))
    assert resolved["config"]["teacher"]["epochs"] == 3
    assert os.path.exists(os.path.join(workdir, "teacher.keras"))
    assert os.listdir(os.path.join(workdir, "tb", "teacher"))
    predict = load_serving(os.path.join(workdir, "teacher"))
    test = load("fashion_mnist:test", data_dir=idx_dir)
    probs = predict(test.images[:16])
    assert probs.shape == (16, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert abs(float(np.mean(np.argmax(predict(test.images), 1) == test.labels)) - acc) < 1e-6


@pytest.mark.slow
def test_train_teacher_missing_data_is_one_clear_line(tmp_path):
    proc = run_command("train_teacher.py", "--config=configs/fashion_mnist.py:quick",
                       f"--config.data.data_dir={tmp_path}", f"--workdir={tmp_path}/w",
                       check=False)
    assert proc.returncode == 1
    assert "error: fashion_mnist: train-images-idx3-ubyte[.gz] not found" in proc.stderr
    assert "Traceback" not in proc.stderr
