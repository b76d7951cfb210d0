"""bench/teacher_seeds.py trains and scores bench teachers of the seeds asked for, reuses a
teacher already in the workroot, and skips seeds already recorded."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _teacher_seeds(tmp_path, seeds: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "teacher_seeds.py"),
         "--config=configs/digits.py", f"--seeds={seeds}", "--overrides=teacher.epochs=3",
         f"--workroot={tmp_path / 'teachers'}", f"--out={tmp_path / 'seeds.jsonl'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)


def _records(tmp_path) -> list[dict]:
    with open(tmp_path / "seeds.jsonl") as f:
        return [json.loads(line) for line in f]


@pytest.mark.slow
def test_teachers_of_each_seed_are_trained_scored_reused_and_skipped(tmp_path):
    proc = _teacher_seeds(tmp_path, "3,4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    first = _records(tmp_path)
    assert [(r["seed"], r["trained_earlier"]) for r in first] == [(3, False), (4, False)]
    for record in first:
        assert 0.2 < record["teacher_test_accuracy"] <= 1.0   # chance is 0.1
        with open(os.path.join(record["teacher_dir"], "config.json")) as f:
            trained = json.load(f)["config"]
        assert trained["seed"] == record["seed"] and trained["teacher"]["epochs"] == 3
    # the seed reached the teacher: two seeds, two different teachers
    weights = [pathlib.Path(r["teacher_dir"], "teacher", "variables",
                            "variables.data-00000-of-00001").read_bytes() for r in first]
    assert weights[0] != weights[1]

    # seed 3 is recorded: skipped; seed 5's folder already holds a teacher (here seed 4's):
    # scored as it is, not trained again
    shutil.copytree(tmp_path / "teachers" / "seed4", tmp_path / "teachers" / "seed5")
    proc = _teacher_seeds(tmp_path, "3,5")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "seed 3 already in" in proc.stdout
    records = _records(tmp_path)
    assert len(records) == 3 and records[:2] == first
    assert records[2]["seed"] == 5 and records[2]["trained_earlier"] is True
    assert records[2]["teacher_test_accuracy"] == first[1]["teacher_test_accuracy"]
