"""The server's announcer (issue 17 item 5): its policy on a fake clock, and a Server driven by a
fake runtime (no network) to see which nodes it trusts and which it unannounces."""

from __future__ import annotations

import asyncio
import random
import selectors
import statistics
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import pytest

from hyperswarm_hugin.announcer import Announcer
from hyperswarm_hugin.peer_connect import Server
from hyperswarm_hugin.protocol.dht import messages as m
from hyperswarm_hugin.protocol.dht.node import REQUEST_TIMEOUT
from hyperswarm_hugin.protocol.dht.query import QueryReply
from hyperswarm_hugin.protocol.encoding import Address
from hyperswarm_hugin.protocol.hugin import KeyPair
from hyperswarm_hugin.protocol.hyperdht import messages as h
from hyperswarm_hugin.protocol.hyperdht.announcer import (
    PING_INTERVAL,
    PING_ROUNDS,
    RELAY_PING_RETRIES,
    SILENT_AVOIDED_FOR,
    AnnounceSchedule,
    RelayGenerations,
    Step,
    pick_best,
    walk_early,
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


def test_a_dead_relay_is_replaced_within_a_ping_interval_and_two_tries_on_a_fake_clock() -> None:
    # Relay 2 dies at t=100; a relay ping times out after its tries (1 s each), takes 0.1 s when
    # answered; a walk with its ANNOUNCEs 0.5 s.  Node 4 is the next closest.
    silent_after = (RELAY_PING_RETRIES + 1) * REQUEST_TIMEOUT
    assert silent_after <= 2.0
    schedule = AnnounceSchedule()
    relays, alive, died = {1, 2, 3}, {1, 2, 3, 4}, 100.0
    step, now = schedule.after_announce(len(relays), 0.0)
    while True:
        if now >= died:
            alive.discard(2)
        if step is Step.ANNOUNCE:
            relays = set(sorted(alive)[:3])
            announced = now + 0.5
            step, now = schedule.after_announce(len(relays), announced)
            if announced > died:
                break
        else:
            answered = len(relays & alive)
            step, now = schedule.after_pings(answered, len(relays),
                                             now + (0.1 if answered == len(relays) else silent_after))
    assert relays == {1, 3, 4}
    assert announced - died <= PING_INTERVAL + 0.1 + silent_after + 0.5


def test_the_replacement_walk_starts_at_a_miss_that_would_mean_announcing_again() -> None:
    a, b, c = (("127.0.0.1", p) for p in (1, 2, 3))
    assert walk_early([b], [a, b, c])
    assert walk_early([a], [a])  # a lone relay must answer too
    assert not walk_early([], [a, b, c])


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
        self.silent: set[Address] = set()  # nodes that no longer answer anything
        self.miss_once: set[Address] = set()  # nodes that miss their next PING only
        self.ping_retries: list[int | None] = []
        self.walk_seeds: list[list[Address] | None] = []
        self.walk_avoids: list[list[Address]] = []
        self.server_address = ("127.0.0.1", 9999)

    async def status(self) -> Any:
        return SimpleNamespace(firewalled=True, public_address=None)

    def serve(self, *args: Any) -> None:
        pass

    def configure_auth(self, config: Any) -> None:
        return None

    def _answer(self, address: Address, command: int) -> m.Response | None:
        self.sent.append((command, address))
        if address in self.silent:
            return None
        if command == m.PING and address in self.miss_once:
            self.miss_once.discard(address)
            return None
        error = 1 if command == h.ANNOUNCE and address in self.refusing else m.OK
        value = b"\x00" if command == h.FIND_PEER else None
        return m.Response(tid=1, to=("127.0.0.1", 9999), id=bytes(32), token=b"t" * 32, error=error,
                          value=value)

    async def query(self, target: bytes, command: int, value: bytes | None = None, *, commit: Any = None,
                    internal: bool = False, nodes: Any = None, avoid: Any = None) -> Any:
        self.walk_seeds.append(None if nodes is None else list(nodes))
        self.walk_avoids.append(list(avoid or []))
        for r in self.closest:
            if commit is not None and (spec := commit(r)) is not None:
                self._answer(r.address, spec[0])  # the node sends it; the answer is not reported
        return SimpleNamespace(closest=list(self.closest), error=None, replies=[])

    async def request(self, address: Address, command: int, **kwargs: Any) -> Any:
        if command == m.PING:
            self.ping_retries.append(kwargs.get("retries"))
        return SimpleNamespace(response=self._answer(address, command), address=address, error=None)

    async def ping(self, address: Address) -> Any:
        return SimpleNamespace(ok=self._answer(address, m.PING) is not None)


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


@asynccontextmanager
async def listening(runtime: FakeRuntime) -> AsyncIterator[tuple[Server, Announcer]]:
    """A server listening (and announcing) on ``runtime``; closed on the way out."""
    server = Server(runtime, KeyPair.random())  # type: ignore[arg-type]
    await server.listen()
    try:
        assert server._announcer is not None
        yield server, server._announcer
    finally:
        await server.close()


def test_a_relay_that_misses_a_ping_round_is_dropped_at_once_and_left_out_of_the_next_walk() -> None:
    # hyperdht keeps offering a dead relay until the new announce ends, starts that announce's
    # walk at it and unannounces there: each of those waits out the dead node's retries.
    async def run() -> None:
        runtime = FakeRuntime([reply(1), reply(2), reply(3), reply(4)], refusing=set())
        async with listening(runtime) as (server, announcer):
            assert [r.relay_address[1] for r in server.relays] == [1, 2, 3]
            dead = ("127.0.0.1", 2)
            runtime.silent.add(dead)
            runtime.closest = [reply(1), reply(3), reply(4)]
            runtime.ping_retries.clear()
            runtime.sent.clear()
            step, _ = await announcer._ping_round()
            assert step is Step.ANNOUNCE
            # One try each, then the relay that missed gets its second (the walk starts meanwhile).
            assert runtime.ping_retries == [0] * (3 + RELAY_PING_RETRIES)
            assert runtime.sent.count((m.PING, dead)) == 1 + RELAY_PING_RETRIES
            assert [r.relay_address[1] for r in server.relays] == [1, 3]
            assert server.relay_addresses == [("127.0.0.1", 1), ("127.0.0.1", 3)]
            assert server._punches.relays == server.relays
            assert len(runtime.walk_seeds) == 2  # the listen's walk, then the early one

            runtime.sent.clear()
            await announcer._announce()
            assert len(runtime.walk_seeds) == 2  # the announce used the walk the round started
            assert runtime.walk_seeds[-1] is not None and dead not in runtime.walk_seeds[-1]
            assert runtime.walk_avoids[-1] == [dead]
            assert [r.relay_address[1] for r in server.relays] == [1, 3, 4]
            assert not any(a == dead for _, a in runtime.sent)

    asyncio.run(run())


def test_a_relay_that_answers_its_second_try_stays_and_the_early_walk_is_dropped() -> None:
    async def run() -> None:
        runtime = FakeRuntime([reply(1), reply(2), reply(3), reply(4)], refusing=set())
        async with listening(runtime) as (server, announcer):
            slow = ("127.0.0.1", 2)
            runtime.miss_once.add(slow)
            runtime.sent.clear()
            step, _ = await announcer._ping_round()
            assert step is Step.PING
            assert runtime.sent.count((m.PING, slow)) == 2
            assert len(runtime.walk_seeds) == 2 and runtime.walk_avoids[-1] == [slow]  # started early
            assert announcer._walk is None and announcer._silent == set()
            assert [r.relay_address[1] for r in server.relays] == [1, 2, 3]
            assert announcer.stats.relays_lost == 0

    asyncio.run(run())


# ------------------------------------------------- the announcer itself, on a virtual clock


class _AdvancingSelector(selectors.SelectSelector):
    """Waiting for I/O moves the loop's clock on by the wait instead (nothing here does I/O)."""

    def __init__(self, loop: VirtualClockLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout is None:
            raise RuntimeError("nothing scheduled: the test would wait forever")
        self._loop.now += timeout
        return []


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock moves only when every task waits: hours run in milliseconds."""

    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(selector=_AdvancingSelector(self))

    def time(self) -> float:
        return self.now


RTT = 0.01
WALK = 1.0
"""A FIND_PEER walk on loopback with churn: it ends ~1 s after the last dead node it met."""
ANNOUNCE_BOUND = PING_INTERVAL + RTT + (RELAY_PING_RETRIES + 1) * REQUEST_TIMEOUT + 2 * RTT
"""A relay dies just after answering: the next round starts one interval and a round trip later,
its two tries miss (the walk, started at the first miss, is done by then) and the ANNOUNCEs take
a round trip (the on_relays call comes before the UNANNOUNCEs)."""
NODE_BOUND = PING_INTERVAL + RTT + 4 * REQUEST_TIMEOUT + WALK + RTT
"""hyperdht-hugin in the same place: four tries to the dead relay, then its walk, then ANNOUNCEs."""


class VirtualNet:
    """Nodes 1..n on the virtual clock, closest to the target by port; a dead one never answers."""

    def __init__(self, n: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.closed = False
        self.alive = {("127.0.0.1", p) for p in range(1, n + 1)}
        self.pings: dict[Address, int] = {}
        self.walks: list[tuple[float, list[Address]]] = []  # (when started, avoided)

    async def _reach(self, address: Address, retries: int | None) -> bool:
        if address in self.alive:
            await asyncio.sleep(RTT)
            return True
        await asyncio.sleep(REQUEST_TIMEOUT * ((3 if retries is None else retries) + 1))
        return False

    async def request(self, address: Address, command: int, **kwargs: Any) -> Any:
        if command == m.PING:
            self.pings[address] = self.pings.get(address, 0) + 1 + (kwargs.get("retries") or 0)
        ok = await self._reach(address, kwargs.get("retries"))
        value = b"\x00" if command == h.FIND_PEER else None
        response = m.Response(tid=1, to=("127.0.0.1", 9999), id=bytes(32), token=b"t" * 32, error=m.OK,
                              value=value) if ok else None
        return SimpleNamespace(response=response, address=address, error=None)

    async def query(self, target: bytes, command: int, value: bytes | None = None, *, commit: Any = None,
                    internal: bool = False, nodes: Any = None, avoid: Any = None) -> Any:
        self.walks.append((self.loop.time(), list(avoid or [])))
        await asyncio.sleep(WALK)
        closest = [reply(a[1]) for a in sorted(self.alive)[:20]]
        return SimpleNamespace(closest=closest, error=None, replies=[])


def test_a_dead_relay_is_replaced_sooner_than_hyperdht_at_any_moment_without_more_pings() -> None:
    # 40 relays die one after another, each at a random moment of the ping cycle.  The walk
    # that replaces a relay starts at its first missed try, so the new ANNOUNCEs go out as soon
    # as the second try fails: a ping interval and two tries at worst, where hyperdht-hugin needs
    # four tries and then its walk.  A dead relay gets two pings where hyperdht-hugin sends four.
    rng = random.Random(5)

    async def run() -> list[float]:
        net = VirtualNet(60)
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()
        announcer = Announcer(net, KeyPair.random(), bytes(32), lambda relays: changed.set())  # type: ignore[arg-type]
        await announcer.start()
        took = []
        deaths: list[tuple[Address, float]] = []
        try:
            for _ in range(40):
                await asyncio.sleep(rng.uniform(10.0, 40.0))  # a random phase of the 3 s cycle
                victim = rng.choice(announcer.generations.current())
                net.alive.discard(victim)
                net.pings[victim] = 0
                died = loop.time()
                while not (len(announcer.relays) == 3 and
                           all(r.relay_address != victim for r in announcer.relays)):
                    changed.clear()
                    await changed.wait()
                took.append(loop.time() - died)
                assert net.pings[victim] <= RELAY_PING_RETRIES + 1
                # The walk never visited the dead relay, nor the relays that died lately.
                avoided = set(net.walks[-1][1])
                assert victim in avoided
                assert avoided <= {v for v, _ in deaths} | {victim}
                assert all(v in avoided for v, t in deaths if died - t < SILENT_AVOIDED_FOR - 10)
                assert not any(v in avoided for v, t in deaths if died - t > SILENT_AVOIDED_FOR + 10)
                deaths.append((victim, died))
        finally:
            await announcer.stop()
        return took

    loop = VirtualClockLoop()
    try:
        took = loop.run_until_complete(run())
    finally:
        loop.close()
    assert max(took) <= ANNOUNCE_BOUND + 1e-6 < NODE_BOUND - WALK
    # The moments fall all over the cycle: the median is about half an interval under the bound.
    assert min(took) < ANNOUNCE_BOUND - PING_INTERVAL + 0.5
    assert statistics.median(took) < ANNOUNCE_BOUND - PING_INTERVAL / 2 + 0.5
