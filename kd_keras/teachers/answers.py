"""Turns what a teacher answers (probabilities, logits, labels, top-k) into checked
probabilities ``float32 [n, num_classes]``; anything malformed is a BadAnswerError."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from kd_keras.errors import BadAnswerError, ConfigError

OUTPUTS = ("probs", "logits", "label", "topk")


def _array(raw: Any, what: str, dtype=np.float64) -> np.ndarray:
    try:
        return np.asarray(raw, dtype=dtype)
    except (TypeError, ValueError):
        raise BadAnswerError(f"teacher answered {what} that is not a numeric array") from None


def _check_rows(arr: np.ndarray, n: int) -> None:
    if arr.shape[0] != n:
        raise BadAnswerError(f"teacher answered {arr.shape[0]} rows for {n} images")


def _check_classes(found: int, num_classes: Optional[int]) -> int:
    if num_classes is not None and found != num_classes:
        raise BadAnswerError(f"teacher answered {found} classes, the config expects {num_classes}")
    return found


def _topk(raw: Any, n: int, num_classes: Optional[int], tol: float) -> np.ndarray:
    if num_classes is None:
        raise BadAnswerError("a top-k teacher needs the class count (config data.num_classes)")
    if isinstance(raw, dict):  # column form: {"classes": [n, k], "scores": [n, k]}
        classes, scores = raw.get("classes"), raw.get("scores")
    else:  # row form, as TF Serving answers multi-output signatures
        try:
            classes = [r["classes"] for r in raw]
            scores = [r["scores"] for r in raw]
        except (TypeError, KeyError):
            raise BadAnswerError("top-k answers need 'classes' and 'scores' per image") from None
    if classes is None or scores is None:
        raise BadAnswerError("top-k answers need 'classes' and 'scores'")
    if isinstance(classes, (list, tuple)) and len({len(np.atleast_1d(c)) for c in classes}) > 1:
        # rows of different k (a service answering "the top few"): one row at a time
        if not isinstance(scores, (list, tuple)) or len(scores) != len(classes):
            raise BadAnswerError("top-k classes and scores differ in length")
        _check_rows(np.empty(len(classes)), n)
        return np.concatenate([_topk({"classes": [c], "scores": [p]}, 1, num_classes, tol)
                               for c, p in zip(classes, scores)])
    classes, scores = _array(classes, "top-k classes"), _array(scores, "top-k scores")
    if classes.ndim == 1:
        classes, scores = classes[:, None], scores[:, None]
    _check_rows(classes, n)
    if classes.shape != scores.shape:
        raise BadAnswerError(f"top-k classes {classes.shape} and scores {scores.shape} differ")
    if not np.all(np.isfinite(scores)) or scores.min() < -tol or np.any(scores.sum(1) > 1 + tol):
        raise BadAnswerError("top-k scores must be finite, non-negative, summing to at most 1")
    if np.any(classes != np.round(classes)) or classes.min() < 0 or classes.max() >= num_classes:
        raise BadAnswerError(f"top-k classes must be integers in [0, {num_classes})")
    k = classes.shape[1]
    rest = np.clip(1.0 - scores.sum(1, keepdims=True), 0, None) / max(num_classes - k, 1)
    probs = np.repeat(rest, num_classes, axis=1)
    np.put_along_axis(probs, classes.astype(np.int64), np.clip(scores, 0, None), axis=1)
    return probs / probs.sum(1, keepdims=True)


def to_probabilities(raw: Any, output: str, n: int, num_classes: Optional[int],
                     tol: float = 1e-3) -> np.ndarray:
    """Converts a raw answer for ``n`` images into validated probabilities [n, C]."""
    if output not in OUTPUTS:
        raise ConfigError(f"unknown teacher output {output!r}; choose one of {OUTPUTS}")
    if output == "topk":
        return _topk(raw, n, num_classes, tol).astype(np.float32)
    if output == "label":
        labels = _array(raw, "labels")
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.ndim != 1:
            raise BadAnswerError(f"a label teacher must answer one class per image, got shape {labels.shape}")
        _check_rows(labels, n)
        if num_classes is None:
            raise BadAnswerError("a label-only teacher needs the class count (config data.num_classes)")
        if (not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels))
                or labels.min() < 0 or labels.max() >= num_classes):
            raise BadAnswerError(f"teacher labels must be integers in [0, {num_classes})")
        return np.eye(num_classes, dtype=np.float32)[labels.astype(np.int64)]
    arr = _array(raw, output)
    if arr.ndim != 2:
        raise BadAnswerError(f"teacher answered shape {arr.shape}; expected [images, classes]")
    _check_rows(arr, n)
    _check_classes(arr.shape[1], num_classes)
    if not np.all(np.isfinite(arr)):
        raise BadAnswerError(f"teacher answered NaN or infinite {output}")
    if output == "logits":
        e = np.exp(arr - arr.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    if arr.min() < -tol:
        raise BadAnswerError(f"teacher answered negative probabilities (min {arr.min():.4g}); "
                             "if it answers logits, use --teacher_output=logits")
    sums = arr.sum(axis=1)
    if np.any(np.abs(sums - 1.0) > tol):
        worst = sums[np.argmax(np.abs(sums - 1.0))]
        raise BadAnswerError(f"teacher probabilities do not sum to 1 (one row sums to {worst:.4g}); "
                             "if it answers logits, use --teacher_output=logits")
    arr = np.clip(arr, 0.0, None)
    return (arr / arr.sum(axis=1, keepdims=True)).astype(np.float32)
