"""What every actor message shares: ``==``, ``hash()`` and ``repr()`` over its fields.

The messages are frozen dataclasses declared with ``eq=False, repr=False`` on this base.  A
dataclass compiles its own ``__eq__``, ``__hash__`` and ``__repr__`` for each class (~3.6 kB of a
process's heap per class); these are one copy for all, with the same meaning: equal when of the
same class with equal fields, hashed and shown by their fields (docs/performance.md, "Idle
connected peer: RSS").
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


class Message:
    """The base of every actor message (a frozen dataclass with ``eq=False, repr=False``)."""

    __slots__ = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _field_names(type(self)))

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__ or not isinstance(other, Message):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in _field_names(type(self)))
        return f"{type(self).__qualname__}({shown})"
