"""The commands: one error line for a mistake, nothing bought; --resume with other
settings; help text."""

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import run_command
from test_teachers import images, softmax_teacher

from kd_keras import data
from kd_keras.errors import ConfigError
from kd_keras.teachers import AnswerCache, CallableBackend, Teacher
from kd_keras.teachers.server import PredictServer


# 6. --resume refuses a changed config.
@pytest.mark.slow
def test_resume_with_a_changed_config_is_one_clear_error(idx_dir, tmp_path):
    from test_distill import tiny_config, toy_teacher

    from kd_keras.distill.run import run_fsbbt

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
