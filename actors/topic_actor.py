"""TopicActor: one per joined topic; decides when to announce and look it up (protocol/swarm/discovery.py).

It answers each TopicInput with TopicChanged: its state, and maybe a query for the swarm's host
to run or an unannounce to send.  Time arrives in the messages.
"""

from __future__ import annotations

import random
from typing import assert_never

from thespian.actors import Actor, ActorAddress

from hyperswarm_hugin.actors.messages import QueryTopic, RestoreState, TopicChanged, TopicEvent, TopicInput
from hyperswarm_hugin.protocol.swarm import discovery
from hyperswarm_hugin.protocol.swarm.discovery import Step, TopicState


class TopicActor(Actor):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.state: TopicState | None = None
        self.settle_delay = 1.0
        self.rng = random.Random()

    def receiveMessage(self, msg: object, sender: ActorAddress) -> None:
        if isinstance(msg, RestoreState):
            assert isinstance(msg.state, tuple)
            self.state, self.settle_delay, seed = msg.state
            self.rng = random.Random(seed)
            return
        if not isinstance(msg, TopicInput) or self.state is None:
            return
        step = self._step(self.state, msg)
        self.state = step.state
        query = QueryTopic(step.state.topic, step.state.clock, step.query) if step.query else None
        self.send(sender, TopicChanged(step.state, query, step.unannounce))

    def _step(self, state: TopicState, msg: TopicInput) -> Step:
        event = TopicEvent(msg.event)
        match event:
            case TopicEvent.REFRESH:
                return discovery.refresh(state, msg.server, msg.client)
            case TopicEvent.DONE:
                return discovery.query_done(state, msg.clock, msg.ok, msg.now, self.rng, self.settle_delay)
            case TopicEvent.TICK:
                return discovery.tick(state, msg.now)
            case TopicEvent.SUSPEND:
                return discovery.suspend(state)
            case TopicEvent.RESUME:
                return discovery.resume(state)
            case TopicEvent.LEAVE:
                return discovery.leave(state)
            case _:
                assert_never(event)
