"""PeerActor: one per remote public key the swarm knows.

It owns the peer's :class:`~hyperswarm_hugin.protocol.swarm.peer_state.PeerState` (attempts, priority, proven,
banned, explicit, topics) and answers every event with :class:`PeerChanged`: its new state and
what it asks of the swarm (queue me, dial me, wait on a retry timer).  The SwarmActor keeps the
last state reported and restarts a PeerActor that fails from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from thespian.actors import Actor, ActorAddress

from hyperswarm_hugin.actors.messages import (
    PeerAction,
    PeerChanged,
    PeerConnected,
    PeerDial,
    PeerDisconnected,
    PeerExplicit,
    PeerFound,
    PeerRetryDue,
    PeerSetBan,
    PeerSetReconnect,
    RestoreState,
)
from hyperswarm_hugin.protocol.swarm.peer_state import PeerState
from hyperswarm_hugin.protocol.swarm.retry import select_backoff


def _queue_if_allowed(state: PeerState) -> PeerChanged:
    state, ok = state.with_priority()
    if not ok:
        return PeerChanged(state)
    return PeerChanged(replace(state, queued=True), PeerAction.ENQUEUE)


class PeerActor(Actor):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.state: PeerState | None = None

    def receiveMessage(self, msg: object, sender: ActorAddress) -> None:
        if isinstance(msg, RestoreState):
            assert isinstance(msg.state, PeerState)
            self.state = msg.state
            return
        handler = HANDLERS.get(type(msg))
        if handler is None or self.state is None:
            return
        answer = handler(self, msg)
        self.state = answer.state
        self.send(sender, answer)

    def on_found(self, msg: PeerFound) -> PeerChanged:
        assert self.state is not None
        state = self.state.found(msg.topic, msg.relay_addresses, msg.connected)
        return PeerChanged(state) if msg.connected else _queue_if_allowed(state)

    def on_explicit(self, msg: PeerExplicit) -> PeerChanged:
        assert self.state is not None
        state = replace(self.state, explicit=msg.explicit)
        if not msg.explicit or msg.connected:
            return PeerChanged(state)
        return _queue_if_allowed(state)

    def on_dial(self, msg: PeerDial) -> PeerChanged:
        assert self.state is not None
        state = replace(self.state, queued=False) if msg.queued else self.state
        if not msg.reserved:
            return PeerChanged(state, PeerAction.DEQUEUED, queued=msg.queued)
        action = PeerAction.SKIP if state.banned else PeerAction.DIAL
        return PeerChanged(state, action, queued=msg.queued, conn_id=msg.conn_id)

    def on_connected(self, msg: PeerConnected) -> PeerChanged:
        assert self.state is not None
        if msg.client:
            return PeerChanged(self.state.connected(msg.now, True))
        return PeerChanged(replace(self.state, client=False))

    def on_disconnected(self, msg: PeerDisconnected) -> PeerChanged:
        assert self.state is not None
        state = self.state.disconnected(msg.now)
        backoff = select_backoff(state) if msg.requeue else None
        if backoff is None:
            return PeerChanged(replace(state, waiting=False))
        return PeerChanged(replace(state, waiting=True), PeerAction.WAIT, backoff=backoff)

    def on_retry_due(self, msg: PeerRetryDue) -> PeerChanged:
        assert self.state is not None
        state = replace(self.state, waiting=False)
        if msg.connected:
            return PeerChanged(state)
        return _queue_if_allowed(state)

    def on_ban(self, msg: PeerSetBan) -> PeerChanged:
        assert self.state is not None
        return PeerChanged(replace(self.state, banned=msg.banned))

    def on_reconnect(self, msg: PeerSetReconnect) -> PeerChanged:
        assert self.state is not None
        return PeerChanged(replace(self.state, reconnecting=msg.reconnecting))


HANDLERS: dict[type, Callable[[PeerActor, Any], PeerChanged]] = {
    PeerFound: PeerActor.on_found,
    PeerExplicit: PeerActor.on_explicit,
    PeerDial: PeerActor.on_dial,
    PeerConnected: PeerActor.on_connected,
    PeerDisconnected: PeerActor.on_disconnected,
    PeerRetryDue: PeerActor.on_retry_due,
    PeerSetBan: PeerActor.on_ban,
    PeerSetReconnect: PeerActor.on_reconnect,
}
