"""``bin/label.py``: every check before the first answer, a budget that holds across runs,
and no file replaced that it did not write (issue #21, item 5 and the label findings)."""

import numpy as np
import pytest

from conftest import run_command
from kd_keras.teachers.server import PredictServer

from test_teachers import images, softmax_teacher

COMMON = ("--config=configs/fashion_mnist.py:quick", "--config.data.image_shape=(6,6,1)",
          "--config.data.num_classes=5")


def _label(server, tmp_path, npz, output, *extra):
    return run_command("label.py", *COMMON, f"--teacher={server.url}", f"--images=npz:{npz}",
                       f"--output={output}", f"--workdir={tmp_path}/w", *extra, check=False)


def _one_error(proc, message):
    errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert proc.returncode == 1 and len(errors) == 1 and message in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_label_refuses_before_paying_and_replaces_only_its_own_file(tmp_path):
    npz = tmp_path / "x.npz"
    np.savez(npz, images=images(8))
    mine = tmp_path / "mine.npz"
    np.savez(mine, precious=np.arange(3))
    (tmp_path / "afile").write_text("not a folder")
    server = PredictServer(softmax_teacher, "toy").start()
    try:
        _one_error(_label(server, tmp_path, npz, mine), "was not written by kd_keras")
        assert list(np.load(mine)) == ["precious"]  # the user's file is untouched
        _one_error(_label(server, tmp_path, npz, tmp_path / "afile" / "out.npz"),
                   "is a file, not a folder")
        _one_error(_label(server, tmp_path, npz, tmp_path / "out.npz",
                          "--config.query.budget=5"), "nothing was sent")
        assert server.images_answered == 0
        # a run within the budget; its rerun replaces its own file and pays nothing
        for _ in range(2):
            proc = _label(server, tmp_path, npz, tmp_path / "out.npz", "--config.query.budget=10")
            assert proc.returncode == 0, proc.stderr
        assert server.images_answered == 8
        assert np.load(tmp_path / "out.npz")["probs"].shape == (8, 5)
        # the budget holds across runs in the workdir: 8 paid, 4 new images do not fit in 10
        more = tmp_path / "more.npz"
        np.savez(more, images=images(4, seed=7))
        _one_error(_label(server, tmp_path, more, tmp_path / "more_out.npz",
                          "--config.query.budget=10"), "8 already paid")
        assert server.images_answered == 8
    finally:
        server.close()


@pytest.mark.slow
def test_an_error_line_is_not_preceded_by_tensorflows_start_up_lines(tmp_path):
    proc = run_command("label.py", *COMMON, "--teacher=http://127.0.0.1:1/v1/models/x",
                       "--images=nosuchkind:x", f"--output={tmp_path}/o.npz",
                       f"--workdir={tmp_path}/w", check=False)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "error: unknown data source 'nosuchkind:x': the kind must be one of ['cifar10_jpeg', "
        "'digits', 'fashion_mnist', 'folder', 'mnist', 'npz', 'tfds']"]


@pytest.mark.slow
def test_ctrl_c_during_start_up_is_one_line(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import ROOT, as_at_a_terminal

    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "bin", "label.py"), *COMMON,
                             "--teacher=http://127.0.0.1:1/v1/models/x", "--images=npz:x.npz",
                             f"--output={tmp_path}/o.npz", f"--workdir={tmp_path}/w"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=as_at_a_terminal)
    # signalled once TensorFlow's library is mapped: inside the start-up's import of it
    # (which takes seconds more), however fast or slow this machine starts Python
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/maps") as maps:
                if "libtensorflow_framework" in maps.read():
                    break
        except OSError:
            pass
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "interrupted during start-up: nothing was sent"
