"""One check of a resolved config, run by every command before the first teacher answer.

Each setting's check sits in its row of :data:`kd_keras.config.SETTINGS` beside its default
and doc; the kinds of check are here. Every enumerated setting is checked against its list
and every number against its range, so a typo costs nothing: it is one ``error:`` line
before anything is paid for.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, Optional

from kd_keras.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Setting:
    """One setting: its dotted field, default, check (what it allows) and one line of doc."""

    field: str
    default: Any
    check: Callable[[str, Any], None]
    doc: str


@dataclasses.dataclass(frozen=True)
class Choice:
    """One of ``allowed()`` (a function, so lists kept with their code stay current)."""

    allowed: Callable[[], Iterable]

    def __call__(self, field: str, value) -> None:
        allowed = tuple(self.allowed())
        if value not in allowed:
            raise ConfigError(f"{field} must be one of {', '.join(map(str, allowed))}; "
                              f"got {value!r}")


@dataclasses.dataclass(frozen=True)
class Number:
    """A number (an integer with ``integer``) within the bounds given."""

    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False

    def __call__(self, field: str, value) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                self.integer and int(value) != value):
            raise ConfigError(f"{field} must be {'an integer' if self.integer else 'a number'}; "
                              f"got {value!r}")
        if value != value:  # NaN
            raise ConfigError(f"{field} must be a number; got NaN")
        low, high = self.low, self.high
        bad_low = low is not None and (value <= low if self.low_open else value < low)
        bad_high = high is not None and (value >= high if self.high_open else value > high)
        if bad_low or bad_high:
            lo = "" if low is None else f"{'>' if self.low_open else '>='} {low}"
            hi = "" if high is None else f"{'<' if self.high_open else '<='} {high}"
            raise ConfigError(f"{field} must be {' and '.join(p for p in (lo, hi) if p)}; "
                              f"got {value!r}")


@dataclasses.dataclass(frozen=True)
class Shape:
    """(height, width, channels) of positive integers; ``empty`` allows (); ``channels``
    limits the last dimension."""

    empty: bool = False
    channels: Optional[tuple] = None

    def __call__(self, field: str, value) -> None:
        shape = tuple(value or ())
        if self.empty and not shape:
            return
        if (len(shape) != 3 or any(isinstance(d, bool) or not isinstance(d, (int, float))
                                   or int(d) != d or d < 1 for d in shape)
                or (self.channels and shape[2] not in self.channels)):
            want = "(height, width, " + (" or ".join(map(str, self.channels))
                                         if self.channels else "channels") + ")"
            raise ConfigError(f"{field} must be {'() or ' if self.empty else ''}{want}; "
                              f"got {shape}")


class Text:
    """Any string (a source spec, a name, a folder)."""

    def __call__(self, field: str, value) -> None:
        if not isinstance(value, str):
            raise ConfigError(f"{field} must be text; got {value!r}")


class Model:
    """A registered model name or ``keras:PATH.keras``, or one of ``also`` (words the
    setting's doc explains, e.g. "" for a default)."""

    def __init__(self, also: tuple = ()):
        self.also = tuple(also)

    def __call__(self, field: str, value) -> None:
        from kd_keras import models

        if value in self.also:
            return
        if not isinstance(value, str) or not models.is_known(value):
            Choice(lambda: models.names() + ["keras:PATH.keras"])(field, value)


class Sources:
    """``real`` and registered generators, each at most once, with optional shares."""

    def __call__(self, field: str, value) -> None:
        from kd_keras import synthesis

        synthesis.parse_sources(value)


class SelectionGenerators:
    """``all``, or names of registered generators, comma-separated."""

    def __call__(self, field: str, value) -> None:
        from kd_keras import synthesis

        if str(value) == "all":
            return
        for name in (n.strip() for n in str(value).split(",")):
            if name not in synthesis.names():
                raise ConfigError(f"{field} must be 'all' or names among "
                                  f"{', '.join(synthesis.names())}; got {name!r}")


class ExportFormats:
    """Registered TFLite formats, comma-separated (or none)."""

    def __call__(self, field: str, value) -> None:
        from kd_keras.export.tflite import parse_formats

        parse_formats(value)


def _get(config, field: str):
    node = config
    for part in field.split("."):
        try:
            node = node[part]
        except (KeyError, AttributeError, TypeError):
            raise ConfigError(f"the config has no field {field}") from None
    return node


def check_config(config) -> None:
    """Raises ConfigError naming the first setting that is unknown or out of range: each
    setting's own check (:data:`kd_keras.config.SETTINGS`), then the few that tie two
    settings together."""
    from kd_keras import synthesis
    from kd_keras.config import SETTINGS

    for setting in SETTINGS:
        setting.check(setting.field, _get(config, setting.field))
    sources = synthesis.parse_sources(_get(config, "synthesis.sources"))
    for section in ("mixup", "cutmix"):
        if not _get(config, f"{section}.low") < _get(config, f"{section}.high"):
            raise ConfigError(f"{section}.low must be below {section}.high")
    if "cvae" in sources:
        Number(low=1, integer=True)("cvae.epochs", _get(config, "cvae.epochs"))
    if _get(config, "student.targets") == "true_labels" and set(sources) != {synthesis.REAL}:
        raise ConfigError("student.targets=true_labels trains on the real images alone: "
                          "set synthesis.sources=real")
