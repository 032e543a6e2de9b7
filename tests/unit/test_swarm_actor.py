"""The SwarmActor and its children, driven as the host drives them, with a fake clock.

What hyperswarm's own suite checks, at the level where the decisions are made: dial limits,
retries and backoffs, prioritized reconnects, bans, the duplicate rule, flush accounting, explicit
peers, leave, suspend/resume, settle lookups, and restart of a failing PeerActor.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

import pytest
from thespian.actors import ActorSystem

from hyperswarm_hugin.actors import peer_actor, swarm_actor
from hyperswarm_hugin.actors.messages import (
    Admission,
    AdmitIncoming,
    BanPeer,
    CloseConnection,
    ConnectionEnded,
    ConnectionOpened,
    Dial,
    DialResult,
    FlushDone,
    FlushRequest,
    IncomingConnection,
    JoinPeer,
    LeaveTopic,
    PeerConnected,
    PeerView,
    QueryTopic,
    RefreshTopic,
    ResumeSwarm,
    StartSwarm,
    SuspendSwarm,
    SwarmConfig,
    SwarmStats,
    SwarmStatsRequest,
    SwarmTimer,
    SwarmUpdated,
    SwarmWake,
    TopicQueryDone,
    UnannounceTopic,
)
from hyperswarm_hugin.actors.runtime import LOG_DEFS
from hyperswarm_hugin.actors.swarm_actor import SwarmActor

T = TypeVar("T")
TOPIC = b"t" * 32
ME = b"\x80" * 32


def key(n: int) -> bytes:
    return bytes([n]) * 32


class Harness:
    """Plays the swarm's host: tells the actor things, keeps what it asks for, runs a fake clock."""

    def __init__(self, **config: Any) -> None:
        self.system = ActorSystem("simpleSystemBase", transientUnique=True, logDefs=LOG_DEFS)
        self.actor = self.system.createActor(SwarmActor)
        self.now = 1000.0
        self.wake: float | None = None
        self.out: list[Any] = []
        options = {"backoffs": (1.0, 5.0, 15.0, 600.0), "jitter": 0.0, "seed": 7} | config
        self.tell(StartSwarm(SwarmConfig(public_key=options.pop("public_key", ME), **options), self.now))

    def tell(self, msg: Any) -> None:
        self.system.tell(self.actor, msg)
        while (reply := self.system.listen(0)) is not None:
            if isinstance(reply, SwarmWake):
                self.wake = reply.at
            self.out.append(reply)

    def take(self, kind: type[T]) -> list[T]:
        found = [m for m in self.out if isinstance(m, kind)]
        self.out = [m for m in self.out if not isinstance(m, kind)]
        return found

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while self.wake is not None and self.wake <= end:
            self.now = self.wake
            self.wake = None
            self.tell(SwarmTimer(self.now))
        self.now = end

    def join(self, server: bool = False, client: bool = True) -> QueryTopic:
        self.tell(RefreshTopic(TOPIC, server, client, self.now))
        [query] = self.take(QueryTopic)
        return query

    def found(self, query: QueryTopic, *peers: bytes) -> None:
        self.tell(TopicQueryDone(TOPIC, query.clock, True, tuple((p, (("127.0.0.1", 1),)) for p in peers),
                                 self.now))

    def dials(self) -> list[Dial]:
        return self.take(Dial)

    def fail(self, dial: Dial) -> None:
        self.tell(DialResult(dial.conn_id, dial.public_key, False, self.now, error="PEER_NOT_FOUND"))

    def open(self, dial: Dial) -> None:
        self.tell(DialResult(dial.conn_id, dial.public_key, True, self.now))

    def state(self, public_key: bytes) -> Any:
        views = [v for v in self.out if isinstance(v, PeerView) and v.public_key == public_key]
        return views[-1].state if views else None

    def stats(self) -> SwarmStats:
        self.tell(SwarmStatsRequest(1))
        [stats] = self.take(SwarmStats)
        return stats

    def close(self) -> None:
        self.system.shutdown()


@pytest.fixture
def swarm() -> Iterator[Harness]:
    h = Harness()
    yield h
    h.close()


def test_found_peers_are_dialed_at_most_max_parallel_at_once(swarm: Harness) -> None:
    swarm.found(swarm.join(), *(key(i) for i in range(1, 6)))
    dials = swarm.dials()
    assert len(dials) == 3
    assert swarm.stats().queued == 2
    swarm.open(dials[0])
    assert len(swarm.dials()) == 1
    assert [o.public_key for o in swarm.take(ConnectionOpened)] == [dials[0].public_key]


def test_our_own_key_is_never_dialed(swarm: Harness) -> None:
    swarm.found(swarm.join(), ME)
    assert swarm.dials() == []


def test_a_failed_dial_is_retried_on_the_medium_timer(swarm: Harness) -> None:
    swarm.found(swarm.join(), key(1))
    [dial] = swarm.dials()
    swarm.fail(dial)
    assert swarm.state(key(1)).attempts == 1
    swarm.advance(3.2)  # a bulk timer of 5 s ticks every 3.3 s and fires on its second tick
    assert swarm.dials() == []
    swarm.advance(3.5)
    [again] = swarm.dials()
    assert again.public_key == key(1)


def test_a_proven_peer_reconnects_on_the_short_timer(swarm: Harness) -> None:
    swarm.found(swarm.join(), key(1))
    [dial] = swarm.dials()
    swarm.open(dial)
    swarm.advance(2.0)
    swarm.tell(ConnectionEnded(dial.conn_id, key(1), swarm.now))
    assert swarm.state(key(1)).prioritized
    swarm.advance(1.4)  # 1 s timer: ticks every 0.66 s, fires on the second
    assert [d.public_key for d in swarm.dials()] == [key(1)]


def test_a_topic_peer_is_dropped_after_four_failures_in_a_row(swarm: Harness) -> None:
    swarm.found(swarm.join(), key(1))
    for _ in range(4):
        [dial] = swarm.dials()
        swarm.fail(dial)
        swarm.advance(40.0)
    assert swarm.dials() == []
    assert swarm.state(key(1)) is None  # forgotten: nothing keeps it
    swarm.advance(3600.0)
    assert swarm.dials() == []


def test_an_explicit_peer_comes_back_only_on_the_very_long_timer(swarm: Harness) -> None:
    swarm.tell(JoinPeer(key(1), swarm.now))
    for _ in range(4):
        [dial] = swarm.dials()
        swarm.fail(dial)
        swarm.advance(40.0)
    assert swarm.dials() == []
    assert swarm.state(key(1)).explicit
    swarm.advance(300.0)
    assert swarm.dials() == []
    swarm.advance(600.0)
    assert [d.public_key for d in swarm.dials()] == [key(1)]


def test_a_banned_peer_is_never_dialed_and_a_ban_can_be_lifted(swarm: Harness) -> None:
    swarm.tell(BanPeer(key(1), True, swarm.now))
    query = swarm.join()
    swarm.found(query, key(1))
    assert swarm.dials() == []
    swarm.tell(BanPeer(key(1), False, swarm.now))
    swarm.advance(3.0)
    swarm.found(swarm.join(), key(1))  # found again by a refresh
    assert [d.public_key for d in swarm.dials()] == [key(1)]


def test_the_firewall_refusing_a_dial_bans_without_counting_an_attempt(swarm: Harness) -> None:
    swarm.found(swarm.join(), key(1))
    [dial] = swarm.dials()
    swarm.tell(DialResult(dial.conn_id, key(1), False, swarm.now, refused=True))
    assert swarm.state(key(1)).banned and swarm.state(key(1)).attempts == 0
    assert swarm.stats().counters["banned-peers"] == 1
    assert swarm.stats().connecting == 0


@pytest.mark.parametrize("ours_is_larger", [True, False])
def test_simultaneous_connections_keep_the_one_the_larger_key_dialed(ours_is_larger: bool) -> None:
    remote = key(0x10)
    h = Harness(public_key=b"\xf0" * 32 if ours_is_larger else b"\x01" * 32)
    try:
        h.found(h.join(), remote)
        [dial] = h.dials()
        h.tell(IncomingConnection(-1, remote, False, h.now))  # the remote dialed us meanwhile
        closed = h.take(CloseConnection)
        if ours_is_larger:  # our dial survives, their connection to us goes
            assert [c.conn_id for c in closed] == [-1]
            h.open(dial)
            assert [o.conn_id for o in h.take(ConnectionOpened)] == [dial.conn_id]
        else:  # their connection survives, our dial is abandoned
            assert [c.conn_id for c in closed] == [dial.conn_id]
            assert [o.conn_id for o in h.take(ConnectionOpened)] == [-1]
            h.fail(dial)
            assert h.take(ConnectionOpened) == []
        assert h.stats().counters["duplicates"] == 1
    finally:
        h.close()


def test_a_new_connection_replaces_one_that_already_moved_bytes(swarm: Harness) -> None:
    swarm.tell(IncomingConnection(-1, key(1), False, swarm.now))
    swarm.tell(IncomingConnection(-2, key(1), True, swarm.now))  # the peer lost -1 and came back
    assert [c.conn_id for c in swarm.take(CloseConnection)] == [-1]
    assert [o.conn_id for o in swarm.take(ConnectionOpened)] == [-1, -2]


def test_max_peers_limits_dials_and_incoming_connections() -> None:
    h = Harness(max_peers=2)
    try:
        h.found(h.join(), key(1), key(2), key(3))
        dials = h.dials()
        assert len(dials) == 2
        for d in dials:
            h.open(d)
        h.tell(AdmitIncoming(5, key(9)))
        assert h.take(Admission) == [Admission(5, False, "max-peers")]
        h.tell(AdmitIncoming(6, dials[0].public_key))  # a peer we have may reconnect
        assert h.take(Admission)[0].accepted
    finally:
        h.close()


def test_max_server_connections_limits_incoming_connections() -> None:
    h = Harness(max_server_connections=1)
    try:
        h.tell(IncomingConnection(-1, key(1), False, h.now))
        h.tell(AdmitIncoming(1, key(2)))
        assert h.take(Admission) == [Admission(1, False, "max-server-connections")]
    finally:
        h.close()


def test_flush_waits_until_every_queued_peer_was_tried() -> None:
    h = Harness(max_parallel=1)
    try:
        h.found(h.join(), key(1), key(2))
        [first] = h.dials()
        h.tell(FlushRequest(9, h.now))
        assert h.take(FlushDone) == []
        h.open(first)
        [second] = h.dials()
        assert h.take(FlushDone) == []
        h.fail(second)
        assert h.take(FlushDone) == [FlushDone(9, True)]
    finally:
        h.close()


def test_flush_with_nothing_pending_is_done_at_once(swarm: Harness) -> None:
    swarm.tell(FlushRequest(3, swarm.now))
    assert swarm.take(FlushDone) == [FlushDone(3, True)]


def test_update_is_emitted_when_connections_open_and_close(swarm: Harness) -> None:
    swarm.found(swarm.join(), key(1))
    [dial] = swarm.dials()
    swarm.take(SwarmUpdated)
    swarm.open(dial)
    assert len(swarm.take(SwarmUpdated)) == 1
    swarm.tell(ConnectionEnded(dial.conn_id, key(1), swarm.now))
    assert len(swarm.take(SwarmUpdated)) == 1


def test_first_query_is_followed_by_two_settle_lookups_then_the_refresh(swarm: Harness) -> None:
    first = swarm.join(server=True, client=True)
    assert first.kind == "announce"
    swarm.found(first)
    swarm.advance(2.1)  # settle_delay 1 s × (1..2)
    [settle] = swarm.take(QueryTopic)
    assert settle.kind == "lookup"
    swarm.found(settle)
    swarm.advance(4.1)
    [second] = swarm.take(QueryTopic)
    swarm.found(second)
    swarm.advance(500.0)
    assert swarm.take(QueryTopic) == []
    swarm.advance(230.0)  # 10 min + up to 2 min jitter
    [refresh] = swarm.take(QueryTopic)
    assert refresh.kind == "announce"


def test_a_failed_query_is_retried_after_1_2_4_s_and_a_success_settles_as_usual(swarm: Harness) -> None:
    query = swarm.join(server=True, client=True)
    for wait in (1.0, 2.0, 4.0):  # no DHT node answered (started before its DHT nodes)
        swarm.tell(TopicQueryDone(TOPIC, query.clock, False, (), swarm.now))
        swarm.advance(wait - 0.05)
        assert swarm.take(QueryTopic) == []
        swarm.advance(0.1)
        [query] = swarm.take(QueryTopic)
        assert query.kind == "announce"
    swarm.found(query, key(1))
    assert [d.public_key for d in swarm.dials()] == [key(1)]
    swarm.advance(2.1)
    [settle] = swarm.take(QueryTopic)
    assert settle.kind == "lookup"


def test_leaving_a_topic_unannounces_and_its_peers_are_not_retried(swarm: Harness) -> None:
    query = swarm.join(server=True, client=True)
    swarm.found(query, key(1))
    [dial] = swarm.dials()
    swarm.open(dial)
    swarm.tell(LeaveTopic(TOPIC, swarm.now))
    assert swarm.take(UnannounceTopic) == [UnannounceTopic(TOPIC)]
    swarm.tell(ConnectionEnded(dial.conn_id, key(1), swarm.now))
    swarm.advance(60.0)
    assert swarm.dials() == [] and swarm.take(QueryTopic) == []


def test_suspend_closes_everything_and_resume_looks_up_again(swarm: Harness) -> None:
    query = swarm.join()
    swarm.found(query, key(1), key(2))
    dials = swarm.dials()
    swarm.open(dials[0])
    swarm.tell(SuspendSwarm(swarm.now))
    assert {c.conn_id for c in swarm.take(CloseConnection)} == {d.conn_id for d in dials}
    swarm.tell(AdmitIncoming(1, key(3)))
    assert not swarm.take(Admission)[0].accepted
    for d in dials:
        swarm.tell(ConnectionEnded(d.conn_id, d.public_key, swarm.now))
    swarm.advance(30.0)
    assert swarm.dials() == [] and swarm.take(QueryTopic) == []
    swarm.tell(ResumeSwarm(swarm.now))
    [again] = swarm.take(QueryTopic)
    swarm.found(again, key(1), key(2))
    assert len(swarm.dials()) == 2


def test_a_failing_peer_actor_is_restarted_from_its_last_state(swarm: Harness,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    swarm.found(swarm.join(), key(1))
    [dial] = swarm.dials()
    before = swarm.state(key(1))
    assert before.topics == (TOPIC,)
    handle_connected = peer_actor.HANDLERS[PeerConnected]
    original_init = peer_actor.PeerActor.__init__
    replacements: set[int] = set()  # PeerActors created after the fault was injected

    def track_new(self: Any) -> None:
        original_init(self)
        replacements.add(id(self))

    def fail_in_the_first_actor(actor: Any, msg: Any) -> Any:
        if id(actor) not in replacements:
            raise RuntimeError("injected fault")
        return handle_connected(actor, msg)

    monkeypatch.setattr(peer_actor.PeerActor, "__init__", track_new)
    monkeypatch.setitem(peer_actor.HANDLERS, PeerConnected, fail_in_the_first_actor)
    swarm.open(dial)
    after = swarm.state(key(1))
    assert swarm.stats().counters["child-restarts"] == 1
    assert after.proven and after.connected_at == swarm.now  # the message was delivered again
    assert after.topics == before.topics  # and the rest came from the last state
    assert [o.public_key for o in swarm.take(ConnectionOpened)] == [key(1)]


def test_firewall_bans_keep_a_bounded_number_of_peers_and_explicit_bans_stay(
        swarm: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(swarm_actor, "MAX_FIREWALL_BANNED_PEERS", 5)
    swarm.tell(BanPeer(key(200), True, swarm.now))  # explicit
    for n in range(1, 21):
        swarm.tell(BanPeer(key(n), True, swarm.now, by_firewall=True))
    forgotten = [v.public_key for v in swarm.out if isinstance(v, PeerView) and v.state is None]
    assert forgotten == [key(n) for n in range(1, 16)]
    assert swarm.state(key(200)).banned
    assert swarm.stats().counters["banned-peers-forgotten"] == 15
