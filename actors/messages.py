"""The messages the node's actors exchange, and those they send back to the runtime.

Every message is an immutable dataclass.  Names say the route: ``...Received``
and ``TimerFired`` come from the runtime's I/O; ``Send...``/``WakeAt`` go back
to it; requests (``FindNode``, ``PingNode``, ...) carry a ``request_id`` that
their ``...Result`` echoes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocol.dht.events import DHTEvent
from protocol.dht.node import NodeOptions
from protocol.dht.query import QueryReply
from protocol.encoding import Address

# --- runtime -> DHTActor ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class StartDHT:
    """Create the DHT node behind bound sockets and, unless told not to, bootstrap it."""

    options: NodeOptions
    server_port: int
    client_port: int
    now: float
    seed: int | None = None
    bootstrap: bool = True


@dataclass(frozen=True, slots=True)
class DatagramReceived:
    data: bytes
    address: Address
    socket: int
    now: float


@dataclass(frozen=True, slots=True)
class TimerFired:
    now: float


@dataclass(frozen=True, slots=True)
class FindNode:
    request_id: int
    target: bytes
    now: float


@dataclass(frozen=True, slots=True)
class PingNode:
    request_id: int
    address: Address
    now: float


@dataclass(frozen=True, slots=True)
class StatusRequest:
    request_id: int


@dataclass(frozen=True, slots=True)
class StopDHT:
    """Fail what is in flight and send nothing more."""


# --- DHTActor -> runtime ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Outbox:
    """What the DHT node wants done after one input: datagrams, next wake-up, events."""

    datagrams: list[tuple[bytes, Address, int]] = field(default_factory=list)
    wake_at: float | None = None
    events: list[DHTEvent] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FindNodeResult:
    request_id: int
    closest: list[QueryReply]
    error: str | None


@dataclass(frozen=True, slots=True)
class PingResult:
    request_id: int
    ok: bool
    node_id: bytes | None
    seen_as: Address | None
    error: str | None


@dataclass(frozen=True, slots=True)
class DHTStatus:
    request_id: int
    id: bytes | None
    table_id: bytes
    ephemeral: bool
    firewalled: bool
    bootstrapped: bool
    public_address: Address | None
    table: list[tuple[bytes, Address]]
    stats: dict[str, int]
