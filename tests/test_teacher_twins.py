"""The benchmark never starts a model from its own teacher's initial weights (bench/teacher_twins.py)."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

from teacher_twins import teacher_twins, with_overrides  # noqa: E402

from kd_keras.config import from_file  # noqa: E402


@pytest.fixture
def config():
    return from_file("configs/fashion_mnist.py", ROOT)  # teacher lenet5, student lenet5_half


def test_a_first_student_of_the_teachers_model_seeded_as_the_teacher_is_its_twin(config):
    """Today's default (three first students of teacher.model, lenet5): seed 0 starts the
    first of them as the seed-0 teacher started; seeds 1-3 and a teacher of another seed do
    not."""
    assert teacher_twins(with_overrides(config, ["seed=0"]), 0) == ["lenet5 (seed 0)"]
    for seed in (1, 2, 3):
        assert teacher_twins(with_overrides(config, [f"seed={seed}"]), 0) == []
    assert teacher_twins(with_overrides(config, ["seed=0"]), 5) == []
    # three of them: seeds 5, 5 + 7919, 5 + 2 x 7919
    three = with_overrides(config, ["seed=5", "unpaid.students=3"])
    assert teacher_twins(three, 5 + 2 * 7919) == ["lenet5 (seed 15843)"]


def test_first_students_of_the_students_model_or_none_are_no_twins(config):
    assert teacher_twins(with_overrides(config, ["seed=0", "unpaid.model="]), 0) == []
    assert teacher_twins(with_overrides(config, ["seed=0", "unpaid.count=0"]), 0) == []
    assert teacher_twins(with_overrides(config, ["seed=0", "student.model=lenet5",
                                                 "unpaid.count=0"]), 0) == ["lenet5 (seed 0)"]


def test_the_bench_refuses_such_a_run_before_anything_runs(tmp_path):
    """Seed 0 of today's default: one error line naming the row and what to do, exit status
    not 0, no teacher trained, no run started, no result written."""
    out = tmp_path / "results.jsonl"
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "paper_table.py"),
         "--config=configs/fashion_mnist.py", "--rows=default@B10000,fsbbt", "--seeds=0,1",
         f"--workroot={tmp_path / 'bench'}", f"--out={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "default@B10000 seed 0 (lenet5 (seed 0))" in errors[0]
    assert "--seeds=1,2,3" in errors[0] and "fsbbt" not in errors[0]
    assert os.listdir(tmp_path / "bench") == [] and not out.exists()


def _bench(tmp_path, *args):
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "paper_table.py"),
         "--config=configs/fashion_mnist.py", f"--workroot={tmp_path / 'bench'}",
         f"--out={tmp_path / 'results.jsonl'}", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_a_teacher_of_another_seed_is_checked_for_twins_and_against_the_one_trained(tmp_path):
    """--teacher_seed=1 makes seed 1 of today's default the twin (before any training); a
    teacher already trained with seed 11 is not taken for one of seed 12: one error line each,
    nothing trained or written."""
    proc = _bench(tmp_path, "--rows=default@B10000", "--seeds=1", "--teacher_seed=1")
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode != 0 and len(errors) == 1, proc.stderr[-2000:]
    assert "default@B10000 seed 1 (lenet5 (seed 1))" in errors[0]
    assert "trained with seed 1)" in errors[0]
    assert os.listdir(tmp_path / "bench") == []

    teacher = tmp_path / "bench" / "teacher"
    (teacher / "teacher").mkdir(parents=True)
    (teacher / "teacher" / "saved_model.pb").write_bytes(b"")
    (teacher / "config.json").write_text('{"config": {"seed": 11}}')
    proc = _bench(tmp_path, "--rows=default@B10000", "--seeds=1", "--teacher_seed=12")
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode != 0 and len(errors) == 1 and "Traceback" not in proc.stderr
    assert "trained with seed 11, not --teacher_seed=12" in errors[0]
    assert sorted(os.listdir(tmp_path / "bench")) == ["teacher"]
    assert not (tmp_path / "results.jsonl").exists()
