"""``pip install .`` installs kd_keras alone, and its commands run from any folder with a
shipped config named (issue #22, item 7)."""

import glob
import os
import subprocess
import sys
import zipfile

import pytest

from conftest import ROOT


@pytest.mark.slow
def test_the_wheel_holds_kd_keras_only_and_its_commands_run_anywhere(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", ROOT, "-w", str(tmp_path / "wheel")], check=True, cwd=tmp_path)
    wheel = glob.glob(str(tmp_path / "wheel" / "*.whl"))[0]
    tops = {n.split("/")[0] for n in zipfile.ZipFile(wheel).namelist()}
    assert tops == {"kd_keras", "kd_keras-0.1.0.dist-info"}
    assert "kd_keras/configs/fashion_mnist.py" in zipfile.ZipFile(wheel).namelist()
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), wheel], check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.run(
        [sys.executable, str(target / "bin" / "kd-label"), "--config=fashion_mnist:quick",
         "--config.data.image_shape=(6,6,1)", "--teacher=http://127.0.0.1:1/v1/models/x",
         "--images=nosuch:x", "--output=o.npz", "--workdir=w"],
        capture_output=True, text=True, cwd=elsewhere, timeout=300,
        env=dict(os.environ, PYTHONPATH=str(target)))
    # the named config was found and checked: the run got as far as the data source
    assert proc.returncode == 1 and proc.stderr.startswith("error: unknown data source"), proc.stderr
