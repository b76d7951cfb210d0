"""One check of a resolved config, run by every command before the first teacher answer.

Every enumerated setting is checked against its list and every number against its range,
so a typo costs nothing: it is one ``error:`` line before anything is paid for.
"""

from __future__ import annotations

from typing import Iterable

from kd_keras.errors import ConfigError


def _choice(config, field: str, allowed: Iterable[str]) -> None:
    value = _get(config, field)
    allowed = tuple(allowed)
    if value not in allowed:
        raise ConfigError(f"{field} must be one of {', '.join(map(str, allowed))}; got {value!r}")


def _number(config, field: str, *, low=None, high=None, low_open=False, high_open=False,
            integer=False) -> None:
    value = _get(config, field)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            integer and int(value) != value):
        raise ConfigError(f"{field} must be {'an integer' if integer else 'a number'}; got {value!r}")
    if value != value:  # NaN
        raise ConfigError(f"{field} must be a number; got NaN")
    bad_low = low is not None and (value <= low if low_open else value < low)
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high:
        lo = "" if low is None else f"{'>' if low_open else '>='} {low}"
        hi = "" if high is None else f"{'<' if high_open else '<='} {high}"
        raise ConfigError(f"{field} must be {' and '.join(p for p in (lo, hi) if p)}; got {value!r}")


def _get(config, field: str):
    node = config
    for part in field.split("."):
        try:
            node = node[part]
        except (KeyError, AttributeError, TypeError):
            raise ConfigError(f"the config has no field {field}") from None
    return node


def check_config(config) -> None:
    """Raises ConfigError naming the first setting that is unknown or out of range."""
    from kd_keras import models, synthesis  # noqa: F401 (synthesis registers generators)
    from kd_keras.distill.augment import AUGMENTATIONS, BATCH_MIXES
    from kd_keras.distill.losses import loss_names
    from kd_keras.distill.student import LR_SCHEDULES
    from kd_keras.synthesis.selection import SELECTIONS
    from kd_keras.teachers.answers import OUTPUTS

    _number(config, "seed", low=0, integer=True)
    shape = tuple(_get(config, "data.image_shape"))
    if len(shape) != 3 or any(int(d) != d or d < 1 for d in shape):
        raise ConfigError(f"data.image_shape must be (height, width, channels); got {shape}")
    _number(config, "data.num_classes", low=2, integer=True)
    for role in ("teacher", "student"):
        if not models.is_known(_get(config, f"{role}.model")):
            _choice(config, f"{role}.model", models.names() + ["keras:PATH.keras"])
        _number(config, f"{role}.epochs", low=1 if role == "teacher" else 0, integer=True)
        _number(config, f"{role}.batch_size", low=1, integer=True)
        _number(config, f"{role}.learning_rate", low=0, low_open=True)

    _number(config, "query.batch_size", low=1, integer=True)
    _number(config, "query.concurrency", low=1, integer=True)
    _number(config, "query.budget", low=0, integer=True)
    _number(config, "query.max_tries", low=1, integer=True)
    _number(config, "query.backoff_seconds", low=0)
    _number(config, "query.timeout_seconds", low=0, low_open=True)
    _choice(config, "query.output", OUTPUTS)
    teacher_shape = tuple(_get(config, "query.image_shape") or ())
    if teacher_shape and (len(teacher_shape) != 3 or teacher_shape[2] not in (1, 3)
                          or any(int(d) != d or d < 1 for d in teacher_shape)):
        raise ConfigError(f"query.image_shape must be () or (height, width, 1 or 3); got {teacher_shape}")

    sources = synthesis.parse_sources(_get(config, "synthesis.sources"))
    _number(config, "synthesis.num_synthetic", low=0, integer=True)
    _choice(config, "synthesis.split", synthesis.base.SPLITS)
    _number(config, "synthesis.batch_size", low=1, integer=True)
    _number(config, "synthesis.grid_size", low=1, integer=True)
    _choice(config, "synthesis.fixed_count", (True, False))
    _number(config, "eval.teacher_sample", low=0, integer=True)
    _number(config, "eval.epoch_sample", low=0, integer=True)
    _choice(config, "synthesis.selection", SELECTIONS)
    _number(config, "selection.pool_factor", low=1)
    _number(config, "selection.warmup", low=0, high=1, high_open=True)
    _number(config, "selection.probe_epochs", low=1, integer=True)
    generators = str(_get(config, "selection.generators"))
    if generators != "all":
        for name in (n.strip() for n in generators.split(",")):
            if name not in synthesis.names():
                raise ConfigError(f"selection.generators must be 'all' or names among "
                                  f"{', '.join(synthesis.names())}; got {name!r}")
    for section in ("mixup", "cutmix"):
        _number(config, f"{section}.alpha", low=0, low_open=True)
        _number(config, f"{section}.low", low=0, high=1)
        _number(config, f"{section}.high", low=0, high=1)
        if not _get(config, f"{section}.low") < _get(config, f"{section}.high"):
            raise ConfigError(f"{section}.low must be below {section}.high")
    _number(config, "mixup.decimals", low=0, integer=True)

    _number(config, "cvae.latent_dim", low=1, integer=True)
    _choice(config, "cvae.architecture", ("mlp", "conv"))
    _number(config, "cvae.epochs", low=1 if "cvae" in sources else 0, integer=True)
    _number(config, "cvae.batch_size", low=1, integer=True)
    _number(config, "cvae.learning_rate", low=0, low_open=True)
    _choice(config, "cvae.likelihood", ("bernoulli", "normal"))
    _number(config, "cvae.uniform_bound", low=0, low_open=True)
    _choice(config, "cvae.condition", ("onehot", "soft"))
    _number(config, "cvae.steps_per_execution", low=1, integer=True)
    _number(config, "student.steps_per_execution", low=1, integer=True)
    _number(config, "student.min_steps", low=0, integer=True)
    _number(config, "student.real_repeat", low=1, integer=True)
    _choice(config, "student.jit_compile", (True, False))

    _choice(config, "student.lr_schedule", LR_SCHEDULES)
    _number(config, "student.ema", low=0, high=1, high_open=True)
    _number(config, "student.bn_batches", low=0, integer=True)
    _choice(config, "student.loss", loss_names())
    _number(config, "student.temperature", low=0, low_open=True)
    _number(config, "student.label_smoothing", low=0, high=1, high_open=True)
    _choice(config, "student.targets", ("teacher", "true_labels"))
    _choice(config, "student.augment", AUGMENTATIONS)
    _choice(config, "student.batch_mix", BATCH_MIXES)
    _number(config, "student.batch_mix_share", low=0, high=1)
    _number(config, "student.batch_mix_alpha", low=0, low_open=True)
    _number(config, "student.shift", low=0, high=1, high_open=True)
    if _get(config, "student.targets") == "true_labels" and set(sources) != {synthesis.REAL}:
        raise ConfigError("student.targets=true_labels trains on the real images alone: "
                          "set synthesis.sources=real")
