"""Runtime <-> DHTActor: the DHT node's inputs (datagrams, time, requests) and its answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hyperswarm_hugin.actors.messages.base import Message
from hyperswarm_hugin.protocol.dht import messages as m
from hyperswarm_hugin.protocol.dht.events import DHTEvent
from hyperswarm_hugin.protocol.dht.node import NodeOptions
from hyperswarm_hugin.protocol.dht.query import QueryReply
from hyperswarm_hugin.protocol.dht.query_runner import CommitFn
from hyperswarm_hugin.protocol.encoding import Address
from hyperswarm_hugin.protocol.hyperdht.messages import Handshake, Holepunch

# --- runtime -> DHTActor ---------------------------------------------------------------

@dataclass(frozen=True, slots=True, eq=False, repr=False)
class StartDHT(Message):
    """Create the DHT node behind bound sockets and, unless told not to, bootstrap it."""

    options: NodeOptions
    server_port: int
    client_port: int
    now: float
    seed: int | None = None
    bootstrap: bool = True
    wall_offset: float | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class DatagramsReceived(Message):
    """What one socket had ready: ``(data, source)`` pairs, oldest first."""

    datagrams: list[tuple[bytes, Address]]
    socket: int
    now: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class TimerFired(Message):
    now: float
    wall: float | None = None
    """The wall clock (Unix seconds): its jump between ticks tells the node the machine slept."""


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class FindNode(Message):
    request_id: int
    target: bytes
    now: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class RunQuery(Message):
    """An iterative query; ``commit`` (in-process only) picks what to send each closest node."""

    request_id: int
    target: bytes
    command: int
    value: bytes | None
    now: float
    commit: CommitFn | None = None
    internal: bool = False
    nodes: list[Address] | None = None
    avoid: list[Address] | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class SendRequest(Message):
    """One request (with retries) to ``address``; answered by RequestResult."""

    request_id: int
    address: Address
    command: int
    now: float
    target: bytes | None = None
    value: bytes | None = None
    internal: bool = False
    retries: int | None = None
    socket: int | None = None  # which socket sends it (a puncher socket); None: the node's choice
    token: bytes | None = None  # the token the node gave us (ANNOUNCE / UNANNOUNCE to one node)


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ServeTarget(Message):
    """Route PEER_HANDSHAKEs and PEER_HOLEPUNCHes for ``target`` (a server's hash(publicKey)) to the
    runtime, or stop."""

    target: bytes
    serve: bool = True


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class AnswerHandshake(Message):
    """A server's answer on its way back (msg2, or a holepunch reply): a response to the client,
    or the request re-sent to a relay from ``socket`` (None: the node's requests socket)."""

    request: m.Request
    to: Address
    socket: int | None
    value: bytes
    as_response: bool


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class PingNode(Message):
    request_id: int
    address: Address
    now: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class StatusRequest(Message):
    request_id: int


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ReachabilityRequest(Message):
    """What a connect needs of the status, without the table and counters DHTStatus copies."""

    request_id: int


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class StopDHT(Message):
    """Fail what is in flight and send nothing more."""


# --- DHTActor -> runtime ---------------------------------------------------------------

@dataclass(frozen=True, slots=True, eq=False, repr=False)
class IncomingHandshake(Message):
    """A PEER_HANDSHAKE for a target this node serves (decoded value in ``handshake``)."""

    request: Any  # m.Request; runtime.py looks up its target (typed bytes | None) as a key
    handshake: Handshake
    source: Address
    socket: int
    now: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class IncomingHolepunch(Message):
    """A PEER_HOLEPUNCH (mode FROM_RELAY) for a target this node serves."""

    request: Any  # m.Request, as IncomingHandshake's
    holepunch: Holepunch
    source: Address
    socket: int
    now: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class RequestResult(Message):
    request_id: int
    response: m.Response | None
    address: Address
    error: str | None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Outbox(Message):
    """What the DHT node wants done after one input: datagrams, next wake-up, events."""

    datagrams: list[tuple[bytes, Address, int]] = field(default_factory=list)
    wake_at: float | None = None
    events: list[DHTEvent] = field(default_factory=list)


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class FindNodeResult(Message):
    request_id: int
    closest: list[QueryReply]
    error: str | None
    replies: list[QueryReply] = field(default_factory=list)
    """Every reply of the walk that carried a value, closest or not (what hyperdht streams)."""


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class PingResult(Message):
    request_id: int
    ok: bool
    node_id: bytes | None
    seen_as: Address | None
    error: str | None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Reachability(Message):
    """DHTStatus's ``firewalled`` and ``public_address`` (the answer to ReachabilityRequest)."""

    request_id: int
    firewalled: bool
    public_address: Address | None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class DHTStatus(Message):
    request_id: int
    id: bytes | None
    table_id: bytes
    ephemeral: bool
    firewalled: bool
    bootstrapped: bool
    public_address: Address | None
    table: list[tuple[bytes, Address]]
    stats: dict[str, int]
