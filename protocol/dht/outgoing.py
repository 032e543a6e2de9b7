"""A request the DHT node sent (or holds back), and what its completion is for."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto
from typing import TYPE_CHECKING

from hyperswarm_hugin.protocol.encoding import Address

if TYPE_CHECKING:
    from hyperswarm_hugin.protocol.dht.query_runner import RunningQuery
    from hyperswarm_hugin.protocol.dht.routing_table import TableNode


SERVER = 0
"""The node's server socket (the announced port), by number; the I/O adapter owns the real one."""
CLIENT = 1
"""The node's client socket (requests while firewalled)."""


class RequestKind(Enum):
    """Who asked for a request, so its reply or timeout goes back to the right place."""

    USER = auto()
    """DHTNode.request / ping: reported as a RequestDone."""
    QUERY = auto()
    """A visit of a running query."""
    COMMIT = auto()
    """A committing query's final request to one of the closest nodes."""
    EVICT = auto()
    """A ping of a full row's oldest node: unless it answers with its id, the newcomer takes its place."""
    CHECK = auto()
    """A ping after a DOWN_HINT: unless it answers with its id, the node leaves the table."""
    QUICK_PING_NAT = auto()
    """The one PING_NAT to the first node that answered the bootstrap walk."""
    CHECK_PING_NAT = auto()
    """A PING_NAT of a network check."""
    SWEEP = auto()
    """A periodic ping of the oldest table nodes: unless it answers with its id, the node leaves."""
    HINT = auto()
    """A DOWN_HINT we send (nothing to do with the answer)."""


PING_NAT_KINDS = frozenset({RequestKind.QUICK_PING_NAT, RequestKind.CHECK_PING_NAT})
"""Answered from another port (the one we ask to be pinged on), so matched by tid alone."""


@dataclass(slots=True)
class Outgoing:
    """One request in flight (or deferred by the congestion window)."""

    rid: int
    tid: int
    address: Address
    socket: int
    data: bytes
    retries_left: int
    kind: RequestKind
    query: RunningQuery | None = None
    deadline: float = 0.0
    slow: bool = False
    done: bool = False
    sent: int = 0
    evict: tuple[TableNode, TableNode] | None = None
    """For EVICT: (the oldest node pinged, the newcomer waiting for its place)."""
    subject: TableNode | None = None
    """For SWEEP, CHECK and EVICT: the table node pinged."""
    heard: int = 0
    """For SWEEP, CHECK and EVICT: the subject's ``heard`` count when the ping left."""
