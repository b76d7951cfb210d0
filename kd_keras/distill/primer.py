"""Soft targets from a first student (issue #26; DIP-KD's "primer", born-again networks).

A label-only teacher's answers say nothing of how alike two classes are. A first student
distilled on those answers does: its softened predictions (at ``student.temperature``) on
the very images paid for are mixed into the targets, ``(1 - w) * answer + w * first``
with ``w = primer.weight``, and a fresh second student is distilled on them. Not one more
teacher answer is bought. What it is worth is measured (docs/RESULTS.md), not assumed.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import keras
import numpy as np

from kd_keras.context import RunContext
from kd_keras.distill.store import LabelledSet
from kd_keras.errors import ConfigError


def check(config) -> None:
    """Raises ConfigError before any answer is bought when a primer cannot be used."""
    if config.primer.weight and config.student.targets != "teacher":
        raise ConfigError("primer.weight > 0 needs student.targets=teacher")


def soft_predictions(model: keras.Model, candidates, temperature: float,
                     batch_size: int = 512) -> np.ndarray:
    """``model``'s softmax at ``temperature`` on every candidate (logits in, probabilities
    out)."""
    out = [keras.ops.convert_to_numpy(keras.ops.softmax(
        keras.ops.cast(model(x, training=False), "float32") / temperature))
        for x in candidates.dataset(batch_size)]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def primed(ctx: RunContext, first: keras.Model, labelled: LabelledSet
           ) -> Optional[LabelledSet]:
    """``labelled`` with every part's targets mixed with ``first``'s soft predictions, or
    None when ``primer.weight`` is 0."""
    weight = float(ctx.config.primer.weight)
    if not weight:
        return None
    temperature = float(ctx.config.student.temperature)
    parts = {}
    for name, part in labelled.parts.items():
        soft = soft_predictions(first, part.candidates, temperature)
        parts[name] = dataclasses.replace(part, targets=(1.0 - weight) * part.targets
                                          + weight * soft)
    print(f"primer: targets of {sum(len(p) for p in parts.values())} images mixed with the "
          f"first student's predictions at T = {temperature:g} (weight {weight:g}); no "
          "teacher answers", flush=True)
    return LabelledSet(parts, labelled.agreement)


__all__ = ["check", "primed", "soft_predictions"]
