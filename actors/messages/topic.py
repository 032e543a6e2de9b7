"""SwarmActor <-> TopicActor: a joined topic's events in, its state and the query to run out."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hyperswarm_hugin.actors.messages.base import Message
from hyperswarm_hugin.actors.messages.swarm import QueryTopic
from hyperswarm_hugin.protocol.swarm.discovery import TopicState


class TopicEvent(StrEnum):
    """What happened to a topic (``TopicInput.event``)."""

    REFRESH = "refresh"
    """Joined, or its roles changed: look it up again."""
    DONE = "done"
    """Its announce / lookup ended (``clock``, ``ok``)."""
    TICK = "tick"
    """Time passed."""
    SUSPEND = "suspend"
    RESUME = "resume"
    LEAVE = "leave"


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class TopicInput(Message):
    """Parent -> TopicActor: what happened to the topic (a name that is no TopicEvent raises
    ValueError here)."""

    event: TopicEvent
    now: float
    server: bool = False
    client: bool = False
    clock: int = 0
    ok: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "event", TopicEvent(self.event))


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class TopicChanged(Message):
    """TopicActor -> parent: its state and, maybe, a query to run or an unannounce to send."""

    state: TopicState
    query: QueryTopic | None = None
    unannounce: bool = False
