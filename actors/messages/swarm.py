"""The swarm's host <-> SwarmActor: hyperswarm's API calls and I/O results in, work and events out."""

from __future__ import annotations

from dataclasses import dataclass

from hyperswarm_hugin.actors.messages.base import Message
from hyperswarm_hugin.protocol.encoding import Address
from hyperswarm_hugin.protocol.swarm.discovery import QueryKind
from hyperswarm_hugin.protocol.swarm.peer_state import PeerState

# --- the swarm's host -> SwarmActor ----------------------------------------------------

@dataclass(frozen=True, slots=True, eq=False, repr=False)
class SwarmConfig(Message):
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


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class StartSwarm(Message):
    config: SwarmConfig
    now: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class RefreshTopic(Message):
    """Join ``topic`` or change its roles (any session server / client), and look it up again."""

    topic: bytes
    server: bool
    client: bool
    now: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class LeaveTopic(Message):
    topic: bytes
    now: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class TopicQueryDone(Message):
    """What one announce / lookup of a topic found: ``(public_key, relay_addresses)`` pairs."""

    topic: bytes
    clock: int
    ok: bool
    peers: tuple[tuple[bytes, tuple[Address, ...]], ...]
    now: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class JoinPeer(Message):
    public_key: bytes
    now: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class LeavePeer(Message):
    public_key: bytes
    now: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class BanPeer(Message):
    """``PeerInfo.ban`` (``by_firewall`` False) or a refusal by the user's firewall (True: emits ``ban``)."""

    public_key: bytes
    banned: bool
    now: float
    by_firewall: bool = False


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class SetReconnect(Message):
    public_key: bytes
    reconnecting: bool
    now: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class DialResult(Message):
    """A dial ended: ``opened``, or failed (``refused`` when our own firewall said no)."""

    conn_id: int
    public_key: bytes
    opened: bool
    now: float
    refused: bool = False
    error: str | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class AdmitIncoming(Message):
    """Before a server handshake is answered: room for one more connection from this key?"""

    request_id: int
    public_key: bytes


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class IncomingConnection(Message):
    """A server connection opened; ``existing_established``: the one we have already moved bytes both ways."""

    conn_id: int
    public_key: bytes
    existing_established: bool
    now: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ConnectionEnded(Message):
    conn_id: int
    public_key: bytes
    now: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class SwarmTimer(Message):
    now: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class FlushRequest(Message):
    request_id: int
    now: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class SuspendSwarm(Message):
    now: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ResumeSwarm(Message):
    now: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class StopSwarm(Message):
    now: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class SwarmStatsRequest(Message):
    request_id: int


# --- SwarmActor -> the swarm's host ----------------------------------------------------

@dataclass(frozen=True, slots=True, eq=False, repr=False)
class QueryTopic(Message):
    """Run one query of ``topic`` (its ``clock`` comes back in TopicQueryDone)."""

    topic: bytes
    clock: int
    kind: QueryKind


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class UnannounceTopic(Message):
    topic: bytes


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Dial(Message):
    conn_id: int
    public_key: bytes
    relay_addresses: tuple[Address, ...]


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class CloseConnection(Message):
    """Destroy a connection (or abandon a dial); ``reason`` as hyperswarm names it."""

    conn_id: int
    reason: str


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ConnectionOpened(Message):
    """Emit ``connection`` for this connection."""

    conn_id: int
    public_key: bytes
    client: bool


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class PeerView(Message):
    """The newest state of a peer (``state`` None: the swarm forgot it)."""

    public_key: bytes
    state: PeerState | None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class PeerBanned(Message):
    """Emit ``ban`` (the user's firewall refused this peer, or it was banned)."""

    public_key: bytes
    reason: str


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class SwarmUpdated(Message):
    """Emit ``update``."""


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class SwarmWake(Message):
    """Send SwarmTimer at ``at`` (None: nothing to wait for)."""

    at: float | None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class FlushDone(Message):
    request_id: int
    ok: bool


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Admission(Message):
    request_id: int
    accepted: bool
    reason: str | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class SwarmStats(Message):
    request_id: int
    connecting: int
    client_connections: int
    server_connections: int
    queued: int
    counters: dict[str, int]
