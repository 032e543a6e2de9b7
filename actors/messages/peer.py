"""SwarmActor <-> PeerActor: one peer's events in, its new state and what it asks of the swarm out."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hyperswarm_hugin.actors.messages.base import Message
from hyperswarm_hugin.protocol.encoding import Address
from hyperswarm_hugin.protocol.swarm.discovery import TopicState
from hyperswarm_hugin.protocol.swarm.peer_state import PeerState


class PeerAction(StrEnum):
    """What a PeerActor asks of the swarm with its new state (``PeerChanged.action``)."""

    ENQUEUE = "enqueue"
    """Put me on the dial queue."""
    DIAL = "dial"
    """Answering a reserved PeerDial: dial me."""
    SKIP = "skip"
    """Answering a reserved PeerDial: I am banned, give the slot back."""
    DEQUEUED = "dequeued"
    """Answering an unreserved PeerDial: I only came off the queue."""
    WAIT = "wait"
    """Start my retry timer (``PeerChanged.backoff``)."""


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class RestoreState(Message):
    """The first message of every PeerActor and TopicActor: the state to start from (after a crash:
    the last one it reported).  A TopicActor's is ``(state, settle_delay, seed)``."""

    state: PeerState | tuple[TopicState, float, int | None]


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class PeerFound(Message):
    topic: bytes
    relay_addresses: tuple[Address, ...]
    connected: bool
    now: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class PeerExplicit(Message):
    explicit: bool
    connected: bool
    now: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class PeerDial(Message):
    """The swarm holds a slot for this peer (``reserved``); dial unless banned.  ``queued``: it came
    off the queue.  Unreserved: it only came off the queue (already connected, or the queue was reset)."""

    queued: bool
    now: float
    reserved: bool = True
    conn_id: int = 0


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class PeerConnected(Message):
    client: bool
    now: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class PeerDisconnected(Message):
    requeue: bool
    now: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class PeerRetryDue(Message):
    connected: bool
    now: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class PeerSetBan(Message):
    banned: bool
    now: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class PeerSetReconnect(Message):
    reconnecting: bool
    now: float


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class PeerChanged(Message):
    """A PeerActor's answer: its new state and what it asks of the swarm (None: nothing).

    DIAL, SKIP and DEQUEUED answer PeerDial, with ``queued`` echoed; WAIT comes with ``backoff``.
    """

    state: PeerState
    action: PeerAction | None = None
    queued: bool = False
    backoff: int | None = None
    conn_id: int = 0

    def __post_init__(self) -> None:
        if self.action is not None:
            object.__setattr__(self, "action", PeerAction(self.action))
