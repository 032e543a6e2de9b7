"""protocol/swarm under arbitrary event sequences: peer state stays within hyperswarm's rules,
retry timers fire each key once, and topic schedules never run two queries at once."""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from hyperswarm_hugin.protocol.swarm import discovery
from hyperswarm_hugin.protocol.swarm.discovery import TopicState
from hyperswarm_hugin.protocol.swarm.peer_state import NORMAL_PRIORITY, VERY_HIGH_PRIORITY, VERY_LOW_PRIORITY, PeerState
from hyperswarm_hugin.protocol.swarm.retry import BulkTimer, select_backoff

KEY = b"k" * 32
TOPIC = b"t" * 32

peer_events = st.lists(st.sampled_from(["found", "found-connected", "connected", "server", "disconnected",
                                        "ban", "unban", "explicit", "queue", "dequeue"]), max_size=60)


@given(peer_events, st.floats(min_value=0, max_value=100))
def test_peer_state_stays_within_the_rules(events: list[str], step: float) -> None:
    state = PeerState(KEY)
    now = 0.0
    for event in events:
        now += step
        if event == "found":
            state = state.found(TOPIC, (), connected=False)
        elif event == "found-connected":
            state = state.found(TOPIC, (), connected=True)
        elif event == "connected":
            state = state.connected(now, True)
        elif event == "server":
            state = replace(state, client=False)
        elif event == "disconnected":
            state = state.disconnected(now)
        elif event in ("ban", "unban"):
            state = replace(state, banned=event == "ban")
        elif event == "explicit":
            state = replace(state, explicit=True)
        elif event == "queue":
            state, ok = state.with_priority()
            if ok:
                state = replace(state, queued=True)
        else:
            state = replace(state, queued=False)
        assert VERY_LOW_PRIORITY <= state.priority <= VERY_HIGH_PRIORITY
        assert state.attempts >= 0 and state.topics in ((), (TOPIC,))
        after, ok = state.with_priority()
        if state.banned or state.queued:
            assert not ok
        if ok:
            assert after.attempts <= 3 and (after.priority >= NORMAL_PRIORITY) == (after.attempts < 3)
        if state.banned or not state.reconnecting:
            assert select_backoff(state) is None


@given(st.lists(st.tuples(st.integers(0, 20), st.floats(0, 5)), max_size=50), st.floats(0.1, 10))
def test_a_bulk_timer_fires_each_key_once_between_one_and_two_ticks(adds: list[tuple[int, float]],
                                                                    period: float) -> None:
    timer = BulkTimer(period)
    now = 0.0
    added: dict[int, float] = {}
    fired: list[int] = []
    for n, (key, gap) in enumerate(adds):
        now += gap
        fired += [k for k in timer.due(now) if isinstance(k, int)]
        key = key * 1000 + n  # unique
        timer.add(key, now)
        added[key] = now
    end = now + 3 * period
    while timer.next_tick is not None and timer.next_tick <= end:
        fired += [k for k in timer.due(timer.next_tick) if isinstance(k, int)]
    assert sorted(fired) == sorted(added)


@given(st.lists(st.sampled_from(["refresh-s", "refresh-c", "refresh-sc", "done", "done-stale", "failed", "tick",
                                 "suspend", "resume", "leave"]), max_size=40), st.integers(0, 2**32))
def test_a_topic_never_runs_two_queries_and_unannounces_what_it_announced(events: list[str], seed: int) -> None:
    rng = random.Random(seed)
    state = TopicState(TOPIC)
    now = 0.0
    announced = False
    for event in events:
        now += rng.random() * 10
        if event.startswith("refresh"):
            roles = event.split("-")[1]
            step = discovery.refresh(state, "s" in roles, "c" in roles)
        elif event in ("done", "done-stale", "failed"):
            clock = state.clock if event != "done-stale" else state.clock - 1
            step = discovery.query_done(state, clock, event != "failed", now, rng, 1.0)
            if event == "failed" and state.running is not None:  # tried again soon, not in 10 minutes
                assert step.state.wake_at is not None and step.state.wake_at - now <= discovery.RETRY_MAX
        elif event == "tick":
            step = discovery.tick(state, state.wake_at or now)
        elif event == "suspend":
            step = discovery.suspend(state)
        elif event == "resume":
            step = discovery.resume(state)
        else:
            step = discovery.leave(state)
        if step.query is not None:
            assert state.running is None or step.state.clock > state.clock  # a new query supersedes
            assert not step.state.left and not step.state.suspended
            announced = announced or step.query is discovery.QueryKind.ANNOUNCE
        if step.unannounce:
            assert announced
            announced = False
        state = step.state
        assert (state.running is None) or (state.running in discovery.QueryKind)
        if state.left:
            assert state.running is None and state.wake_at is None
