"""One registry helper for every extension point: generators, losses, models, data sources
and teacher protocols.

    LOSSES = Registry("loss")

    @LOSSES.register("kl")
    class KLWithTemperature(DistillationLoss): ...

    LOSSES.lookup("kl")  # the class; an unknown name is a ConfigError listing the known

Registering a name twice (for another object) is an error, so two plug-ins cannot shadow
each other silently. A class registered gets its name as ``name``.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional, TypeVar

from kd_keras.errors import ConfigError

T = TypeVar("T")


class RegistryError(ValueError):
    """A name registered twice."""


class Registry:
    """Names to plug-ins of one ``kind`` (the word error messages use)."""

    def __init__(self, kind: str, error: type[Exception] = ConfigError):
        self.kind, self._error = kind, error  # what an unknown name raises
        self._entries: dict[str, Any] = {}

    def register(self, name: str, obj: Optional[T] = None) -> Any:
        """Registers ``obj`` as ``name``; without ``obj``, a decorator that does."""
        if not isinstance(name, str) or not name:
            raise RegistryError(f"a {self.kind} needs a non-empty name, got {name!r}")

        def add(item: T) -> T:
            if name in self._entries and self._entries[name] is not item:
                raise RegistryError(f"a {self.kind} named {name!r} is registered already "
                                    f"({self._entries[name]!r})")
            if isinstance(item, type):
                item.name = name
            self._entries[name] = item
            return item

        return add if obj is None else add(obj)

    def lookup(self, name: str) -> Any:
        """The plug-in registered as ``name``; an unknown name lists the known ones."""
        if name not in self._entries:
            raise self._error(f"unknown {self.kind} {name!r}; choose one of {self.names()}")
        return self._entries[name]

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def items(self):
        return sorted(self._entries.items())


__all__ = ["Registry", "RegistryError"]
