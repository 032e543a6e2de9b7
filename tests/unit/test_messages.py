"""Actor messages get ``==``, ``hash()`` and ``repr()`` from one base (actors/messages/base.py)
with the meaning a dataclass's own would have: immutable, comparable, printable."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from hyperswarm_hugin.actors import messages
from hyperswarm_hugin.actors.messages import FindNode, Outbox, Verdict
from hyperswarm_hugin.actors.messages.base import Message


def every_message() -> list[type]:
    return [c for _, c in inspect.getmembers(messages, inspect.isclass) if dataclasses.is_dataclass(c)]


def test_every_message_is_a_frozen_dataclass_on_the_shared_base() -> None:
    found = every_message()
    assert len(found) >= 60
    for cls in found:
        assert issubclass(cls, Message), cls
        assert cls.__dataclass_params__.frozen, cls  # type: ignore[attr-defined]
        for name in ("__eq__", "__hash__", "__repr__"):
            assert getattr(cls, name) is getattr(Message, name), (cls, name)


def test_the_shared_methods_mean_what_a_dataclass_s_own_would() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Twin:
        request_id: int
        target: bytes
        now: float

    def twin(m: FindNode) -> Twin:
        return Twin(m.request_id, m.target, m.now)

    a, b, c = FindNode(1, b"x" * 32, 0.5), FindNode(1, b"x" * 32, 0.5), FindNode(2, b"x" * 32, 0.5)
    assert [f.name for f in dataclasses.fields(FindNode)] == ["request_id", "target", "now"]
    assert a == b and a != c and hash(a) == hash(b) and hash(a) == hash(twin(a))
    assert repr(a).replace("FindNode", "Twin") == repr(twin(a)).replace(
        "test_the_shared_methods_mean_what_a_dataclass_s_own_would.<locals>.", "")
    assert a != twin(a) and a != (1, b"x" * 32, 0.5)  # another class is never equal
    assert dataclasses.replace(a, request_id=2) == c
    assert {a, b, c} == {a, c}
    assert Outbox() == Outbox() and repr(Outbox()) == "Outbox(datagrams=[], wake_at=None, events=[])"
    with pytest.raises(TypeError):
        hash(Outbox())  # lists inside: unhashable, as with a dataclass's own __hash__
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.request_id = 3  # type: ignore[misc]
    assert Verdict.__match_args__  # pattern matching still sees the fields
