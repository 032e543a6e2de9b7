"""The server's announcer (issue 17 item 5): its policy on a fake clock, and a Server driven by a
fake runtime (no network) to see which nodes it trusts and which it unannounces."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from hyperswarm_hugin.peer_connect import Server
from hyperswarm_hugin.protocol.dht import messages as m
from hyperswarm_hugin.protocol.dht.query import QueryReply
from hyperswarm_hugin.protocol.encoding import Address
from hyperswarm_hugin.protocol.hugin import KeyPair
from hyperswarm_hugin.protocol.hyperdht import messages as h
from hyperswarm_hugin.protocol.hyperdht.announcer import (
    PING_INTERVAL,
    PING_ROUNDS,
    AnnounceSchedule,
    RelayGenerations,
    Step,
    pick_best,
)

pytestmark = pytest.mark.timeout(30)


def reply(port: int, *, token: bool = True, with_id: bool = True) -> QueryReply:
    return QueryReply(bytes([port & 0xFF]) * 32 if with_id else None, ("127.0.0.1", port),
                      b"t" * 32 if token else None, None, ("127.0.0.1", 9999))


def test_the_best_three_replies_with_an_id_and_a_token_are_announced_at() -> None:
    replies = [reply(1, token=False), reply(2), reply(3, with_id=False), reply(4), reply(5), reply(6)]
    assert [r.address[1] for r in pick_best(replies)] == [2, 4, 5]


def test_relays_are_pinged_every_3_s_and_a_lost_relay_means_announcing_at_once() -> None:
    schedule = AnnounceSchedule()
    assert schedule.after_announce(3, 100.0) == (Step.PING, 100.0 + PING_INTERVAL)
    assert schedule.after_pings(3, 3, 103.0) == (Step.PING, 106.0)
    assert schedule.after_pings(2, 3, 106.0) == (Step.ANNOUNCE, 106.0)
    # Fewer than three relays: all of them must answer.
    assert schedule.after_announce(2, 107.0) == (Step.PING, 110.0)
    assert schedule.after_pings(1, 2, 110.0) == (Step.ANNOUNCE, 110.0)


def test_with_every_relay_answering_the_server_announces_again_after_about_5_minutes() -> None:
    schedule = AnnounceSchedule()
    step, now = schedule.after_announce(3, 0.0)
    rounds = 0
    while step is Step.PING:
        rounds += 1
        step, now = schedule.after_pings(3, 3, now + 1.0)  # each round's pings take a second
    assert rounds == PING_ROUNDS
    assert 290.0 <= now <= 410.0


def test_an_announce_stored_nowhere_is_retried_within_seconds() -> None:
    schedule = AnnounceSchedule()
    delays = []
    for _ in range(8):
        step, when = schedule.after_announce(0, 0.0)
        assert step is Step.ANNOUNCE
        delays.append(when)
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert schedule.after_announce(1, 0.0)[0] is Step.PING


def test_a_dead_relay_is_replaced_within_two_ping_intervals_on_a_fake_clock() -> None:
    # Relay 2 dies at t=100; a ping takes 4 s to time out (3 retries), 0.1 s when answered; a
    # walk with its ANNOUNCEs 0.5 s.  Node 4 is the next closest.
    schedule = AnnounceSchedule()
    relays, alive, died = {1, 2, 3}, {1, 2, 3, 4}, 100.0
    step, now = schedule.after_announce(len(relays), 0.0)
    while True:
        if now >= died:
            alive.discard(2)
        if step is Step.ANNOUNCE:
            relays = set(sorted(alive)[:3])
            step, now = schedule.after_announce(len(relays), now + 0.5)
            if now > died:
                break
        else:
            answered = len(relays & alive)
            step, now = schedule.after_pings(answered, len(relays), now + (0.1 if answered == len(relays) else 4.0))
    assert relays == {1, 3, 4}
    assert now - died <= 2 * PING_INTERVAL + 4.0 + 0.5


def test_relay_generations_name_the_relays_a_new_announce_dropped() -> None:
    gens = RelayGenerations()
    a, b, c, d = (("127.0.0.1", p) for p in (1, 2, 3, 4))
    gens.cycle()
    for relay in (a, b, c):
        gens.stored(relay)
    gens.cycle()
    for relay in (a, c, d):
        gens.stored(relay)
    assert gens.current() == [a, c, d]
    assert gens.dropped() == [b]
    assert gens.is_relay(b)


class FakeRuntime:
    """Enough of a NodeRuntime for a Server's announces: replies are scripted per node."""

    def __init__(self, closest: list[QueryReply], refusing: set[Address]) -> None:
        self.loop = asyncio.get_running_loop()
        self.closed = False
        self.closest = closest
        self.refusing = refusing
        self.sent: list[tuple[int, Address]] = []
        self.server_address = ("127.0.0.1", 9999)

    async def status(self) -> Any:
        return SimpleNamespace(firewalled=True, public_address=None)

    def serve(self, *args: Any) -> None:
        pass

    def configure_auth(self, config: Any) -> None:
        return None

    def _answer(self, address: Address, command: int) -> m.Response:
        self.sent.append((command, address))
        error = 1 if command == h.ANNOUNCE and address in self.refusing else m.OK
        value = b"\x00" if command == h.FIND_PEER else None
        return m.Response(tid=1, to=("127.0.0.1", 9999), id=bytes(32), token=b"t" * 32, error=error,
                          value=value)

    async def query(self, target: bytes, command: int, value: bytes | None = None, *, commit: Any = None,
                    internal: bool = False, nodes: Any = None) -> Any:
        for r in self.closest:
            if commit is not None and (spec := commit(r)) is not None:
                self._answer(r.address, spec[0])  # the node sends it; the answer is not reported
        return SimpleNamespace(closest=list(self.closest), error=None, replies=[])

    async def request(self, address: Address, command: int, **kwargs: Any) -> Any:
        return SimpleNamespace(response=self._answer(address, command), address=address, error=None)

    async def ping(self, address: Address) -> Any:
        return SimpleNamespace(ok=True)


def test_a_node_that_refuses_the_announce_is_not_a_relay() -> None:
    # hyperdht-hugin records a relay only once its ANNOUNCE answer says error 0.
    async def run() -> None:
        closest = [reply(1), reply(2), reply(3)]
        runtime = FakeRuntime(closest, refusing={("127.0.0.1", 2)})
        server = Server(runtime, KeyPair.random())  # type: ignore[arg-type]
        await server.listen()
        try:
            assert [r.relay_address for r in server.relays] == [("127.0.0.1", 1), ("127.0.0.1", 3)]
            assert server.relay_addresses == [("127.0.0.1", 1), ("127.0.0.1", 3)]
            assert server._punches.relays == server.relays
        finally:
            await server.close()

    asyncio.run(run())


def test_relays_a_new_announce_dropped_are_unannounced() -> None:
    async def run() -> None:
        runtime = FakeRuntime([reply(1), reply(2), reply(3)], refusing=set())
        server = Server(runtime, KeyPair.random())  # type: ignore[arg-type]
        await server.listen()
        try:
            runtime.closest = [reply(1), reply(3), reply(4)]
            runtime.sent.clear()
            assert server._announcer is not None
            await server._announcer._announce()
            assert [r.relay_address[1] for r in server.relays] == [1, 3, 4]
            assert (h.UNANNOUNCE, ("127.0.0.1", 2)) in runtime.sent
            assert not any(c == h.UNANNOUNCE and a != ("127.0.0.1", 2) for c, a in runtime.sent)
        finally:
            await server.close()

    asyncio.run(run())
