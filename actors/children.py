"""The SwarmActor's children (a PeerActor per remote key, a TopicActor per topic) and what their
death means.

As Thespian's supervision model has it, the parent decides: a child that fails on a message
(``PoisonMessage``) is replaced by a fresh actor started from the last state it reported, and the
message is handed to the replacement once; if the replacement fails on it too, the message is
dropped.  A child that exits without being retired is brought back the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from thespian.actors import ActorAddress


class ChildKind(Enum):
    PEER = "peer"
    TOPIC = "topic"


@dataclass(slots=True)
class Child:
    """A live child actor and what it is (a peer's key or a topic)."""

    address: ActorAddress
    kind: ChildKind
    key: bytes
    redelivered: bool = False
    """Its current actor is a replacement that was handed the message its predecessor failed on."""


class Children:
    def __init__(self) -> None:
        self._by_address: dict[str, Child] = {}  # by str(address): addresses are not hashable

    def add(self, address: ActorAddress, kind: ChildKind, key: bytes) -> Child:
        child = Child(address, kind, key)
        self._by_address[str(address)] = child
        return child

    def get(self, address: ActorAddress) -> Child | None:
        return self._by_address.get(str(address))

    def retire(self, address: ActorAddress) -> None:
        """Forget a child on purpose: its exit is then not a death to answer."""
        self._by_address.pop(str(address), None)

    def reported(self, address: ActorAddress) -> Child | None:
        """A child reported its state: it handled a message, so a later failure may be redelivered."""
        child = self.get(address)
        if child is not None:
            child.redelivered = False
        return child
