"""What a :class:`~hyperswarm_hugin.protocol.dht.node.DHTNode` reports through ``next_event()``."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from hyperswarm_hugin.protocol.dht.messages import Response
from hyperswarm_hugin.protocol.dht.query import QueryReply
from hyperswarm_hugin.protocol.encoding import Address


class ErrorCode(StrEnum):
    """Why a request or query failed (``error`` of :class:`QueryDone` / :class:`RequestDone`), named as
    dht-rpc names them.  A remote error reply is reported as ``"ERROR_<code>"`` instead."""

    REQUEST_TIMEOUT = "REQUEST_TIMEOUT"
    """No reply after every retry."""
    TOO_FEW_NODES_RESPONDED = "TOO_FEW_NODES_RESPONDED"
    """A committing query found no closest node to commit to."""
    DESTROYED = "DESTROYED"
    """The node was destroyed while this was in flight."""


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
class NodeWokeUp:
    """The wall clock jumped between two ticks (the machine slept): the node re-checks its table,
    refreshes, and (adaptive) is ephemeral again until a network check passes."""


@dataclass(frozen=True, slots=True)
class QueryDone:
    """A query finished: the k closest nodes that replied, nearest first."""

    qid: int
    closest: list[QueryReply]
    error: ErrorCode | str | None
    replies: list[QueryReply] = field(default_factory=list)
    """Every successful reply of the walk that carried a value (closest or not), in arrival order."""


@dataclass(frozen=True, slots=True)
class RequestDone:
    """A single request finished with ``response`` or, when it is None, ``error``."""

    rid: int
    response: Response | None
    address: Address
    error: ErrorCode | None


DHTEvent = NodeReady | NodeBecamePersistent | NodeWokeUp | QueryDone | RequestDone
