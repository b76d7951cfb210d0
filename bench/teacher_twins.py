"""Runs that would start a model from the bench teacher's own initial weights.

The bench trains its teacher itself (``bin/train_teacher.py``, the config's ``seed``, 0 so
far). A first student of the teacher's model (``unpaid.model=teacher``) seeded alike starts
from the same weights as the teacher did and ends much nearer to it than any user's could: on
Fashion-MNIST at 50,000 answers it agreed with the teacher on 96.0 % of the test set against
91.3-92.1 % for other seeds (``bench/diagnostics/calibration.py``). A user never has the
teacher's initial weights, so such a run measures nothing a user gets:
``bench/paper_table.py`` refuses it, and ``bench/make_results.py`` leaves out the runs made
before it did.
"""

from __future__ import annotations

import json
import os

import ml_collections

from kd_keras.distill.unpaid import first_students

# The keys teacher_twins reads, and how an override's text becomes each one's value.
KEYS = {"seed": int, "student.model": str, "student.targets": str, "unpaid.count": int,
        "unpaid.model": str, "unpaid.students": int, "unpaid.rounds": int}


def with_overrides(config: ml_collections.ConfigDict, overrides: list[str]
                   ) -> ml_collections.ConfigDict:
    """``config`` with the ``key=value`` overrides of the keys :data:`KEYS` names (the others
    cannot start a model from a seed)."""
    config = config.copy_and_resolve_references()
    for key, value in (o.split("=", 1) for o in overrides):
        if key in KEYS:
            section, _, name = key.rpartition(".")
            setattr(config[section] if section else config, name, KEYS[key](value))
    return config


def teacher_twins(config: ml_collections.ConfigDict, teacher_seed: int) -> list[str]:
    """The models a run with ``config`` would start from the weights the bench teacher
    (``teacher.model``, trained with ``teacher_seed``) started from, as "MODEL (seed S)"."""
    models = [(str(config.student.model), int(config.seed))] + first_students(config)
    return [f"{model} (seed {seed})" for model, seed in models
            if model == str(config.teacher.model) and seed == int(teacher_seed)]


def teacher_seed(teacher_dir: str) -> int:
    """The seed the bench teacher in ``teacher_dir`` was trained with (its resolved config)."""
    with open(os.path.join(teacher_dir, "config.json")) as f:
        return int(json.load(f)["config"]["seed"])
