"""Asking the teacher which augmentations keep an image's class (``student.augment=auto``).

Mirrored and shifted copies of each answered image are free training data only if such a
copy is still of its class: mirrored clothes and photos are, mirrored digits are not. Rather
than guess from the data set, the run pays for a mirrored and a shifted copy of
``student.augment_check`` of the real images each (200 by default, out of the budget) and
uses a transformation in training when the teacher gives at least ``AGREE`` (80 %) of its
copies the class it gave the original. The copies and their answers join the training set:
nothing bought is thrown away. The benchmark teachers' agreement on all 2,000 real images
(``bench/augment_agreement.py``), mirrored / shifted: Fashion-MNIST 70 % / 68 %, MNIST
33 % / 84 %, CIFAR-10 (JPEG) 93 % / 93 %; the 200-image draws of seeds 0-2 stay on their
side of 80 %, narrowly (highest Fashion-MNIST draw 77 %, lowest MNIST shift draw 82.5 %).
One constant for both checks and all data, placed between measured values: a teacher near
it decides by its draw.

A teacher that is not shift-invariant (an MLP) disagrees with shifted copies that are still
of their class: on MNIST an MLP kept 64-72 % of them, and with shifts its student kept
99.7 % of it instead of 99.2 % (docs/RESULTS.md, held-out check). So shifts are also used,
whatever the teacher says, when they can only move background: the outer frame a shift
moves out of the image holds on average at most ``BLANK_FRAME`` (2 %) of pixels that differ
from the image's corner pixel (MNIST 0.5 %, Fashion-MNIST 20 %, CIFAR-10 (JPEG) 68 %, on
2,000 training images). That is read from the checked images alone: no answer is bought.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from kd_keras.data.rows import ImageRows
from kd_keras.distill.augment import AUTO, resolve
from kd_keras.distill.store import Part, real_part
from kd_keras.teachers.labelling import label_seen

AGREE = 0.8  # a transformation is used when the teacher keeps the class of this share
BLANK_FRAME = 0.02  # shifts are used when at most this share of their frame is not background
FRAME = "shift_frame_content"  # the verdicts' key for the measured share


def mirror(images: np.ndarray, rng: np.random.Generator, shift: float) -> np.ndarray:
    """Left-right mirrored copies."""
    return images[:, :, ::-1]


def translate(images: np.ndarray, rng: np.random.Generator, shift: float) -> np.ndarray:
    """Copies moved by whole pixels, up to ``shift`` of the height and width each way but
    never not at all (that copy's answer would be the original's), the edge pixels repeated
    into the space left (the student's shifts, in NumPy: uint8 stays uint8)."""
    n, h, w = images.shape[:3]
    reach = max(1, int(round(shift * max(h, w))))
    padded = np.pad(images, ((0, 0), (reach, reach), (reach, reach), (0, 0)), mode="edge")
    steps = np.arange(-reach, reach + 1)
    moves = np.array([(dy, dx) for dy in steps for dx in steps if dy or dx])
    moves = moves[rng.integers(len(moves), size=n)]
    return np.stack([padded[i, reach - dy:reach - dy + h, reach - dx:reach - dx + w]
                     for i, (dy, dx) in enumerate(moves)])


def frame_content(images: np.ndarray, shift: float) -> float:
    """The mean share of pixels, in the outer frame a shift of up to ``shift`` moves out of
    the image, that differ from the image's top-left pixel by more than a tenth of the
    range: 0 when shifts only ever move background."""
    if len(images) == 0:
        return 1.0
    h, w = images.shape[1:3]
    reach = max(1, int(round(shift * max(h, w))))
    frame = np.ones((h, w), bool)
    frame[reach:h - reach, reach:w - reach] = False
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    x = images.astype(np.float32) / scale
    differs = np.abs(x - x[:, :1, :1, :]).max(axis=-1) > 0.1
    return float(differs[:, frame].mean())


# name -> (the training set's part, how copies are made)
CHECKS: dict[str, tuple[str, Callable]] = {"flip": ("mirrored", mirror),
                                           "shift": ("shifted", translate)}


def answers_needed(config, n_real: int) -> int:
    """How many answers the checks buy: ``student.augment_check`` real images per check (at
    most all of them, and no more than the budget leaves after them), or 0 where the
    augmentation is set by hand or no teacher answers are used."""
    return len(CHECKS) * _per_check(config, n_real)


def _per_check(config, n_real: int) -> int:
    s = config.student
    if s.augment != AUTO or s.targets == "true_labels":
        return 0
    count = min(int(s.augment_check), n_real)
    budget = config.query.budget
    return max(0, min(count, (budget - n_real) // len(CHECKS))) if budget else count


def check_augmentations(ctx, real: ImageRows, real_probs: np.ndarray
                        ) -> tuple[dict[str, float], dict[str, Part]]:
    """({check: share of its copies the teacher gave the original's class}, {part name:
    the copies with their answers}); both empty when the checks buy nothing."""
    config = ctx.config
    count = _per_check(config, len(real))
    agreement, parts = {}, {}
    if not count:
        return agreement, parts
    with ctx.stage("augment_check"):
        for k, (check, (part, transform)) in enumerate(CHECKS.items()):
            rng = np.random.default_rng([config.seed, 11, k])
            chosen = np.sort(rng.permutation(len(real))[:count])
            copies = np.ascontiguousarray(transform(real.raw(chosen), rng, config.student.shift))
            seen, probs = label_seen(copies, ctx.teacher, f"{part} real images")
            agreement[check] = float(np.mean(probs.argmax(1) == real_probs[chosen].argmax(1)))
            if ctx.log is not None:  # TensorBoard: synthesis/augment/flip_agreement, ...
                ctx.log.scalar(f"augment/{check}_agreement", agreement[check], 0)
            parts[part] = real_part(ImageRows(seen), probs)
            if check == "shift":
                agreement[FRAME] = frame_content(real.raw(chosen), config.student.shift)
                if ctx.log is not None:
                    ctx.log.scalar("augment/shift_frame_content", agreement[FRAME], 0)
    said = ", ".join(f"{part} {agreement[c]:.0%}" for c, (part, _) in CHECKS.items())
    blank = (f"; shifts move only background ({agreement[FRAME]:.1%} of their frame is not)"
             if agreement.get(FRAME, 1.0) <= BLANK_FRAME else "")
    print(f"augment: the teacher kept the class of {said} of {count} real images each{blank}; "
          f"used in training: {', '.join(kept(agreement)) or 'none'}", flush=True)
    return agreement, parts


def kept(agreement: dict) -> list:
    """The checked transformations the rule uses: those the teacher kept for at least
    ``AGREE``, and shifts where they move only background (``BLANK_FRAME``)."""
    return [c for c in CHECKS if c in agreement and (agreement[c] >= AGREE or (
        c == "shift" and agreement.get(FRAME, 1.0) <= BLANK_FRAME))]


def augmentation_for(config, labelled) -> str:
    """The student's augmentation for a run's labelled set: ``student.augment`` resolved
    with the teacher's verdicts that the set carries."""
    return resolve(config.student.augment, set(kept(labelled.agreement)))
