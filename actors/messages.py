"""The messages the node's actors exchange, and those they send back to the runtime.

Every message is an immutable dataclass.  Names say the route: ``...Received``
and ``TimerFired`` come from the runtime's I/O; ``Send...``/``WakeAt`` go back
to it; requests (``FindNode``, ``PingNode``, ...) carry a ``request_id`` that
their ``...Result`` echoes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    wall_offset: float | None = None


@dataclass(frozen=True, slots=True)
class DatagramsReceived:
    """What one socket had ready: ``(data, source)`` pairs, oldest first."""

    datagrams: list[tuple[bytes, Address]]
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
class RunQuery:
    """An iterative query; ``commit`` (in-process only) picks what to send each closest node."""

    request_id: int
    target: bytes
    command: int
    value: bytes | None
    now: float
    commit: Any = None
    internal: bool = False
    nodes: list[Address] | None = None


@dataclass(frozen=True, slots=True)
class SendRequest:
    """One request (with retries) to ``address``; answered by RequestResult."""

    request_id: int
    address: Address
    command: int
    now: float
    target: bytes | None = None
    value: bytes | None = None
    internal: bool = False
    retries: int | None = None


@dataclass(frozen=True, slots=True)
class ServeTarget:
    """Route PEER_HANDSHAKEs for ``target`` (a server's hash(publicKey)) to the runtime, or stop."""

    target: bytes
    serve: bool = True


@dataclass(frozen=True, slots=True)
class AnswerHandshake:
    """A server's msg2 on its way back: a response to the client, or a request to a relay."""

    request: Any
    to: Address
    socket: int
    value: bytes
    as_response: bool


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
class IncomingHandshake:
    """A PEER_HANDSHAKE for a target this node serves (decoded value in ``handshake``)."""

    request: Any
    handshake: Any
    source: Address
    socket: int
    now: float


@dataclass(frozen=True, slots=True)
class RequestResult:
    request_id: int
    response: Any
    address: Address
    error: str | None


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


# --- anyone -> AuthActor ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ConfigureAuth:
    """Give the AuthActor the group key, our DHT key pair and the user's firewall.

    ``firewall(remote_public_key, payload)`` returns True to refuse (hyperswarm's
    meaning); refusing there bans the key.  ``group`` None means no Hugin barrier.
    """

    group: Any
    key_pair: Any
    firewall: Any = None
    handshake_rate: float = 5.0
    handshake_burst: int = 20


@dataclass(frozen=True, slots=True)
class AdmitHandshake:
    """May a handshake from ``source`` be processed at all (before any allocation)?

    ``source`` is the datagram's source (the relay's, for a relayed handshake); ``relayed_for``
    the client address a relay named (None when direct): only as honest as that relay."""

    request_id: int
    source: Address
    now: float
    relayed_for: Address | None = None


@dataclass(frozen=True, slots=True)
class CheckPeer:
    """Verify a peer that finished (or is finishing) the Noise handshake."""

    request_id: int
    remote_public_key: bytes
    mid: bytes | None
    source: Address | None
    now: float
    payload: Any = None
    relayed_for: Address | None = None


@dataclass(frozen=True, slots=True)
class SetBan:
    public_key: bytes
    banned: bool


@dataclass(frozen=True, slots=True)
class AuthStatusRequest:
    request_id: int


# --- AuthActor -> asker ----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AuthReady:
    """Our signed ``mid`` (None without a group)."""

    mid: bytes | None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer to AdmitHandshake or CheckPeer; ``reason`` names a refusal."""

    request_id: int
    accepted: bool
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class AuthStatus:
    request_id: int
    counters: dict[str, int]
    banned: int


@dataclass(frozen=True, slots=True)
class DialCheck:
    """May we dial ``remote_public_key``?  Own key, bans, then the user's firewall (payload None)."""

    request_id: int
    remote_public_key: bytes


# --- the swarm's host -> SwarmActor ----------------------------------------------------

@dataclass(frozen=True, slots=True)
class SwarmConfig:
    """hyperswarm's options, in seconds.  ``backoffs`` None: hyperswarm's defaults."""

    public_key: bytes
    max_peers: int = 64
    max_parallel: int = 3
    max_client_connections: int = 100
    max_server_connections: int = 100
    backoffs: tuple[float, ...] | None = None
    jitter: float = 0.5
    settle_delay: float = 1.0
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class StartSwarm:
    config: SwarmConfig
    now: float


@dataclass(frozen=True, slots=True)
class RefreshTopic:
    """Join ``topic`` or change its roles (any session server / client), and look it up again."""

    topic: bytes
    server: bool
    client: bool
    now: float


@dataclass(frozen=True, slots=True)
class LeaveTopic:
    topic: bytes
    now: float


@dataclass(frozen=True, slots=True)
class TopicQueryDone:
    """What one announce / lookup of a topic found: ``(public_key, relay_addresses)`` pairs."""

    topic: bytes
    clock: int
    ok: bool
    peers: tuple[tuple[bytes, tuple[Address, ...]], ...]
    now: float


@dataclass(frozen=True, slots=True)
class JoinPeer:
    public_key: bytes
    now: float


@dataclass(frozen=True, slots=True)
class LeavePeer:
    public_key: bytes
    now: float


@dataclass(frozen=True, slots=True)
class BanPeer:
    """``PeerInfo.ban`` (``by_firewall`` False) or a refusal by the user's firewall (True: emits ``ban``)."""

    public_key: bytes
    banned: bool
    now: float
    by_firewall: bool = False


@dataclass(frozen=True, slots=True)
class SetReconnect:
    public_key: bytes
    reconnecting: bool
    now: float


@dataclass(frozen=True, slots=True)
class DialResult:
    """A dial ended: ``opened``, or failed (``refused`` when our own firewall said no)."""

    conn_id: int
    public_key: bytes
    opened: bool
    now: float
    refused: bool = False
    error: str | None = None


@dataclass(frozen=True, slots=True)
class AdmitIncoming:
    """Before a server handshake is answered: room for one more connection from this key?"""

    request_id: int
    public_key: bytes


@dataclass(frozen=True, slots=True)
class IncomingConnection:
    """A server connection opened; ``existing_established``: the one we have already moved bytes both ways."""

    conn_id: int
    public_key: bytes
    existing_established: bool
    now: float


@dataclass(frozen=True, slots=True)
class ConnectionEnded:
    conn_id: int
    public_key: bytes
    now: float


@dataclass(frozen=True, slots=True)
class SwarmTimer:
    now: float


@dataclass(frozen=True, slots=True)
class FlushRequest:
    request_id: int
    now: float


@dataclass(frozen=True, slots=True)
class SuspendSwarm:
    now: float


@dataclass(frozen=True, slots=True)
class ResumeSwarm:
    now: float


@dataclass(frozen=True, slots=True)
class StopSwarm:
    now: float


@dataclass(frozen=True, slots=True)
class SwarmStatsRequest:
    request_id: int


# --- SwarmActor -> the swarm's host ----------------------------------------------------

@dataclass(frozen=True, slots=True)
class QueryTopic:
    """Run one query: ``kind`` is "announce" (also finds peers), "lookup" or "lookup-unannounce"."""

    topic: bytes
    clock: int
    kind: str


@dataclass(frozen=True, slots=True)
class UnannounceTopic:
    topic: bytes


@dataclass(frozen=True, slots=True)
class Dial:
    conn_id: int
    public_key: bytes
    relay_addresses: tuple[Address, ...]


@dataclass(frozen=True, slots=True)
class CloseConnection:
    """Destroy a connection (or abandon a dial); ``reason`` as hyperswarm names it."""

    conn_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class ConnectionOpened:
    """Emit ``connection`` for this connection."""

    conn_id: int
    public_key: bytes
    client: bool


@dataclass(frozen=True, slots=True)
class PeerView:
    """The newest state of a peer (``state`` None: the swarm forgot it)."""

    public_key: bytes
    state: Any


@dataclass(frozen=True, slots=True)
class PeerBanned:
    """Emit ``ban`` (the user's firewall refused this peer, or it was banned)."""

    public_key: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class SwarmUpdated:
    """Emit ``update``."""


@dataclass(frozen=True, slots=True)
class SwarmWake:
    """Send SwarmTimer at ``at`` (None: nothing to wait for)."""

    at: float | None


@dataclass(frozen=True, slots=True)
class FlushDone:
    request_id: int
    ok: bool


@dataclass(frozen=True, slots=True)
class Admission:
    request_id: int
    accepted: bool
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class SwarmStats:
    request_id: int
    connecting: int
    client_connections: int
    server_connections: int
    queued: int
    counters: dict[str, int]


# --- SwarmActor <-> its children --------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RestoreState:
    """The first message of every PeerActor and TopicActor: the state to start from (after a crash:
    the last one it reported)."""

    state: Any


@dataclass(frozen=True, slots=True)
class PeerFound:
    topic: bytes
    relay_addresses: tuple[Address, ...]
    connected: bool
    now: float


@dataclass(frozen=True, slots=True)
class PeerExplicit:
    explicit: bool
    connected: bool
    now: float


@dataclass(frozen=True, slots=True)
class PeerDial:
    """The swarm holds a slot for this peer (``reserved``); dial unless banned.  ``queued``: it came
    off the queue.  Unreserved: it only came off the queue (already connected, or the queue was reset)."""

    queued: bool
    now: float
    reserved: bool = True
    conn_id: int = 0


@dataclass(frozen=True, slots=True)
class PeerConnected:
    client: bool
    now: float


@dataclass(frozen=True, slots=True)
class PeerDisconnected:
    requeue: bool
    now: float


@dataclass(frozen=True, slots=True)
class PeerRetryDue:
    connected: bool
    now: float


@dataclass(frozen=True, slots=True)
class PeerSetBan:
    banned: bool
    now: float


@dataclass(frozen=True, slots=True)
class PeerSetReconnect:
    reconnecting: bool
    now: float


@dataclass(frozen=True, slots=True)
class PeerChanged:
    """A PeerActor's answer: its new state and what it asks of the swarm.

    ``action``: None, "enqueue", "dial" / "skip" (answering PeerDial, with ``queued`` echoed) or
    "wait" (on retry timer ``backoff``).
    """

    state: Any
    action: str | None = None
    queued: bool = False
    backoff: int | None = None
    conn_id: int = 0


@dataclass(frozen=True, slots=True)
class TopicInput:
    """Parent -> TopicActor: ``event`` is "refresh", "done", "tick", "suspend", "resume" or "leave"."""

    event: str
    now: float
    server: bool = False
    client: bool = False
    clock: int = 0
    ok: bool = True


@dataclass(frozen=True, slots=True)
class TopicChanged:
    """TopicActor -> parent: its state and, maybe, a query to run or an unannounce to send."""

    state: Any
    query: QueryTopic | None = None
    unannounce: bool = False
