"""What a :class:`~protocol.dht.node.DHTNode` reports through ``next_event()``."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.dht.messages import Response
from protocol.dht.query import QueryReply
from protocol.encoding import Address


@dataclass(frozen=True, slots=True)
class NodeReady:
    """The bootstrap walk (and, for forced-persistent nodes, the network check) is done."""

    id: bytes | None
    firewalled: bool
    ephemeral: bool


@dataclass(frozen=True, slots=True)
class NodeBecamePersistent:
    """We are reachable at ``address`` and now carry the id ``hash(address)``."""

    id: bytes
    address: Address


@dataclass(frozen=True, slots=True)
class QueryDone:
    """A query finished: the k closest nodes that replied, nearest first."""

    qid: int
    closest: list[QueryReply]
    error: str | None


@dataclass(frozen=True, slots=True)
class RequestDone:
    """A single request finished with ``response`` or, when it is None, ``error``."""

    rid: int
    response: Response | None
    address: Address
    error: str | None


DHTEvent = NodeReady | NodeBecamePersistent | QueryDone | RequestDone
