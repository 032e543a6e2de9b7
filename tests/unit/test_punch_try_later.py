"""A randomized punch that must wait (the random-punch limit, the server's TRY_LATER) waits
10-20 s and punches again while a blind relay carries the stream, and the server keeps its
puncher for it once the relay paired (connect.js ``roundPunch``/``tryLater``, server.js
``_onpeerholepunch`` and ``prepunching``; docs/holepunch.md "From relayed to direct").

No sockets: a :class:`ClientPunch` and a server's :class:`HolepunchSlots` talk through a fake
network on a fake clock.  It relays PEER_HOLEPUNCH rounds (as a DHT node does), answers the
punchers' NAT-sampling pings through a NAT per side (the client's keeps one port per socket,
the server's picks a new port per destination) and carries holepunch probes between the
sockets.  Every wait of both punchers and of the rounds advances the fake clock."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from hyperswarm_hugin.actors.messages import IncomingHolepunch
from hyperswarm_hugin.errors import HolepunchError
from hyperswarm_hugin.holepunch import ClientPunch, HolepunchSlots
from hyperswarm_hugin.protocol.dht import messages as m
from hyperswarm_hugin.protocol.encoding import Address
from hyperswarm_hugin.protocol.hyperdht import messages as h
from hyperswarm_hugin.protocol.hyperdht.constants import Firewall, PayloadError
from hyperswarm_hugin.protocol.hyperdht.holepunch import (
    PUNCH_TIMEOUT,
    RANDOM_PUNCH_INTERVAL,
    TRY_LATER_MIN,
    TRY_LATER_SPREAD,
    PunchBudget,
    RoundStep,
    SecurePayload,
    punch_round_step,
    try_later_delay,
    waits_after,
)
from hyperswarm_hugin.protocol.hyperdht.payloads import HolepunchInfo, NoisePayload, RelayInfo

SECRET = bytes(range(32))
TARGET = bytes(32)
CLIENT_HOST, SERVER_HOST = "198.51.100.7", "203.0.113.9"
CLIENT_RELAY = ("192.0.2.1", 49737)  # the node that carried the handshake (not one of the server's)
SERVER_RELAY = ("192.0.2.2", 49737)  # the server's announced relay
DHT_NODES = [(f"192.0.2.{i}", 49737) for i in range(10, 16)]


# ---------------------------------------------------------------------- the policy alone


def test_punch_round_step() -> None:
    assert punch_round_step(randomized=False, budget_allows=False, relayed=False) is RoundStep.PUNCH
    assert punch_round_step(randomized=True, budget_allows=True, relayed=False) is RoundStep.PUNCH
    assert punch_round_step(randomized=True, budget_allows=False, relayed=True) is RoundStep.WAIT
    assert punch_round_step(randomized=True, budget_allows=False, relayed=False) is RoundStep.ABORT


def test_only_try_later_to_a_punching_round_with_a_relay_means_wait() -> None:
    assert waits_after(PayloadError.TRY_LATER, relayed=True, punching=True)
    assert not waits_after(PayloadError.TRY_LATER, relayed=False, punching=True)
    assert not waits_after(PayloadError.TRY_LATER, relayed=True, punching=False)
    assert not waits_after(PayloadError.ABORTED, relayed=True, punching=True)


def test_try_later_waits_ten_to_twenty_seconds_in_whole_milliseconds() -> None:
    assert (TRY_LATER_MIN, TRY_LATER_SPREAD) == (10.0, 10.0)
    rng = random.Random(3)
    delays = [try_later_delay(rng) for _ in range(2000)]
    assert all(10.0 <= d <= 20.0 for d in delays)
    assert min(delays) < 10.1 and max(delays) > 19.9
    assert all(abs(d * 1000 - round(d * 1000)) < 1e-6 for d in delays)
    edges = SimpleNamespace(random=lambda: 0.0), SimpleNamespace(random=lambda: 0.99999999)
    assert [try_later_delay(e) for e in edges] == [10.0, 20.0]  # type: ignore[arg-type]


# ---------------------------------------------------------------------- the fake world


class FakeClock:
    """Time for both sides: ``time``, ``call_later`` and a ``sleep`` that moves time on."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.now = 0.0
        self._timers: list[tuple[float, int, asyncio.TimerHandle]] = []
        self._seq = itertools.count()
        self.long_waits: list[float] = []  # every sleep of 10 s or more (the try-later waits)

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[..., None], *args: Any) -> asyncio.TimerHandle:
        handle = asyncio.TimerHandle(self.now + delay, callback, args, self.loop)
        heapq.heappush(self._timers, (self.now + delay, next(self._seq), handle))
        return handle

    def create_task(self, coro: Any) -> asyncio.Task[Any]:
        return self.loop.create_task(coro)

    def create_future(self) -> asyncio.Future[Any]:
        return self.loop.create_future()

    async def sleep(self, seconds: float) -> None:
        if seconds >= 10:
            self.long_waits.append(seconds)
        until = self.now + seconds
        while self._timers and self._timers[0][0] <= until:
            when, _, handle = heapq.heappop(self._timers)
            self.now = max(self.now, when)
            if not handle.cancelled():
                handle._run()
        self.now = until
        await asyncio.sleep(0)


@dataclass
class Side:
    """One peer's node: its sockets behind its NAT, its budget, its requests."""

    net: FakeNet
    host: str
    consistent: bool  # the NAT keeps one port per socket; else a new port per destination
    punch_budget: PunchBudget = field(default_factory=PunchBudget)
    handlers: dict[int, Callable[[int, Address], None]] = field(default_factory=dict)
    mappings: dict[tuple[int, Address], int] = field(default_factory=dict)
    _sockets: Any = field(default_factory=lambda: itertools.count(1))

    @property
    def loop(self) -> FakeClock:
        return self.net.clock

    def mapped(self, socket: int, dest: Address) -> Address:
        key = (socket, dest if not self.consistent else ("*", 0))
        if key not in self.mappings:
            self.mappings[key] = 20000 + len(self.mappings) * 7
        return (self.host, self.mappings[key])

    def open_socket(self, on_probe: Callable[[int, Address], None]) -> int:
        number = next(self._sockets)
        self.handlers[number] = on_probe
        return number

    def release_socket(self, number: int) -> None:
        self.handlers.pop(number, None)

    def send_probe(self, number: int, address: Address, ttl: int) -> None:
        source = self.mapped(number, address)
        if ttl >= 64:  # a low-TTL probe only opens our NAT
            self.net.loop.call_soon(self.net.deliver, self, source, address)

    async def status(self) -> Any:
        return SimpleNamespace(table=[(bytes(32), a) for a in DHT_NODES])

    async def request(self, address: Address, command: int, *, socket: int | None = None, **kwargs: Any) -> Any:
        assert socket is not None
        if command == m.PING:
            return SimpleNamespace(response=SimpleNamespace(to=self.mapped(socket, address)), address=address,
                                   error=None)
        assert command == h.PEER_HOLEPUNCH and address in (CLIENT_RELAY, SERVER_RELAY)
        return await self.net.relay(self, address, socket, kwargs["value"])

    def answer_handshake(self, request: Any, to: Address, socket: int | None, value: bytes, *,
                         as_response: bool) -> None:
        request.answer.set_result((socket, value))


@dataclass
class Round:
    """A round as the relay saw it."""

    at: float
    relay: Address
    punching: bool
    token: bool
    answer: PayloadError | None


class FakeNet:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.clock = FakeClock(loop)
        self.client = Side(self, CLIENT_HOST, consistent=True)
        self.server = Side(self, SERVER_HOST, consistent=False)
        self.slots = HolepunchSlots(self.server, sleep=self.clock.sleep)  # type: ignore[arg-type]
        self.slots.relays = [RelayInfo(SERVER_RELAY, self.server.mapped(0, SERVER_RELAY))]
        self.rounds: list[Round] = []
        self._open = SecurePayload(SECRET, bytes(32))

    def deliver(self, sender: Side, source: Address, dest: Address) -> None:
        receiver = self.server if sender is self.client else self.client
        for (socket, _), port in list(receiver.mappings.items()):
            if (receiver.host, port) == dest and socket in receiver.handlers:
                receiver.handlers[socket](socket, source)
                return

    async def relay(self, client: Side, relay: Address, socket: int, value: bytes) -> Any:
        msg = h.Holepunch.decode(value)
        sent = self._open.open(msg.payload)
        assert sent is not None and msg.mode == h.FROM_CLIENT
        client_seen = client.mapped(socket, relay)
        request = SimpleNamespace(to=self.server.mapped(0, relay), answer=self.loop.create_future())
        if not self.server_puncher.destroyed:  # else its slot is gone: the server drops the round
            self.slots.on_holepunch(IncomingHolepunch(
                request, h.Holepunch(h.FROM_RELAY, msg.id, msg.payload, client_seen), relay, 0, self.clock.now))
            await asyncio.wait({request.answer}, timeout=10)
        if not request.answer.done():
            self.rounds.append(Round(self.clock.now, relay, sent.punching, sent.token is not None, None))
            return SimpleNamespace(response=None, error="REQUEST_TIMEOUT", address=relay)
        server_socket, answer = request.answer.result()
        reply = h.Holepunch.decode(answer)
        opened = self._open.open(reply.payload)
        assert opened is not None
        self.rounds.append(Round(self.clock.now, relay, sent.punching, sent.token is not None,
                                 PayloadError(opened.error)))
        back = h.Holepunch(h.REPLY, msg.id, reply.payload, self.server.mapped(server_socket or 0, relay))
        return SimpleNamespace(response=SimpleNamespace(value=back.encode(), to=client_seen), address=relay,
                               error=None)

    def punch(self, *, relayed: bool, keep: bool) -> ClientPunch:
        """A handshake answered: the server's slot (kept as after a relay pairing, or not) and
        the client's punch, both told whether a relay is in play."""
        slot_id, puncher = self.slots.open(Firewall.UNKNOWN, relayed=relayed)
        self.server_puncher = puncher
        self.slots.secure(slot_id, SECRET)
        if keep:
            self.slots.keep(slot_id, puncher)
        server = NoisePayload(holepunch=HolepunchInfo(slot_id, list(self.slots.relays)))
        return ClientPunch(self.client, TARGET, SECRET, server, relayed=relayed,  # type: ignore[arg-type]
                           rng=random.Random(5), sleep=self.clock.sleep)

    async def run(self, punch: ClientPunch) -> tuple[int, Address]:
        try:
            return await asyncio.wait_for(punch.run(CLIENT_RELAY, self.server.mapped(0, CLIENT_RELAY)), 30)
        finally:
            punch.puncher.destroy()
            self.slots.close()


# ---------------------------------------------------------------------- the flows


def test_the_servers_try_later_makes_a_relayed_client_wait_and_punch_again_through_the_servers_relay() -> None:
    async def run() -> None:
        net = FakeNet(asyncio.get_running_loop())
        net.server.punch_budget.begin()
        net.server.punch_budget.end(0.0)  # the server's last random punch just ended: 20 s to go
        punch = net.punch(relayed=True, keep=False)
        socket, address = await net.run(punch)
        assert address[0] == SERVER_HOST and socket == punch.puncher.socket  # punched after all
        punching = [r for r in net.rounds if r.punching]
        assert [r.answer for r in punching][:1] == [PayloadError.TRY_LATER]
        assert punching[-1].answer is PayloadError.NONE
        assert punching[0].relay == CLIENT_RELAY and punching[0].token
        assert all(r.relay == SERVER_RELAY and not r.token for r in punching[1:])  # delayed rounds
        assert net.slots.try_later == len(punching) - 1 == punch.try_later_waits
        assert net.clock.long_waits and all(10 <= w <= 20 for w in net.clock.long_waits)
        assert punching[-1].at >= RANDOM_PUNCH_INTERVAL  # the server's budget allowed it by then
        # The server's puncher lived through the waits though no relay paired (a punching
        # round had reached it: server.js clears ``prepunching`` then).
        assert punching[-1].at > PUNCH_TIMEOUT

    asyncio.run(run())


def test_without_a_relay_the_servers_try_later_ends_the_punch() -> None:
    async def run() -> None:
        net = FakeNet(asyncio.get_running_loop())
        net.server.punch_budget.begin()
        net.server.punch_budget.end(0.0)
        punch = net.punch(relayed=False, keep=False)
        with pytest.raises(HolepunchError) as failed:
            await net.run(punch)
        assert failed.value.code == "HOLEPUNCH_ABORTED"
        assert [r.answer for r in net.rounds if r.punching] == [PayloadError.TRY_LATER]
        assert net.slots.try_later == 1 and not net.clock.long_waits

    asyncio.run(run())


def test_past_its_own_random_punch_limit_a_relayed_client_says_so_waits_and_punches_again() -> None:
    async def run() -> None:
        net = FakeNet(asyncio.get_running_loop())
        net.client.punch_budget.begin()
        net.client.punch_budget.end(0.0)  # our own last random punch just ended
        punch = net.punch(relayed=True, keep=True)  # the relay paired: the server keeps its puncher
        _, address = await net.run(punch)
        assert address[0] == SERVER_HOST
        after_probe = net.rounds[[r.token for r in net.rounds].index(True):]
        # First a round that is not punching (with our token, to be echoed), then the wait,
        # then the punching round through the server's relay.
        assert after_probe[0].relay == CLIENT_RELAY and not after_probe[0].punching
        punching = [r for r in after_probe if r.punching]
        assert len(punching) == 1 and punching[0].relay == SERVER_RELAY and not punching[0].token
        assert punching[0].answer is PayloadError.NONE and punching[0].at >= RANDOM_PUNCH_INTERVAL
        assert punch.try_later_waits == len(net.clock.long_waits) >= 1

    asyncio.run(run())


def test_the_servers_puncher_goes_after_ten_seconds_unless_the_relay_paired() -> None:
    """server.js drops a puncher that saw no punching round within 10 s (``prepunching``), but
    not once the relay paired; a client waiting out its own limit then still finds it."""

    async def run() -> None:
        net = FakeNet(asyncio.get_running_loop())
        net.client.punch_budget.begin()
        net.client.punch_budget.end(0.0)
        punch = net.punch(relayed=True, keep=False)  # no relay paired on the server's side
        with pytest.raises(HolepunchError) as failed:
            await net.run(punch)
        assert failed.value.code == "HOLEPUNCH_ABORTED"
        punching = [r for r in net.rounds if r.punching]
        assert len(punching) == 1 and punching[0].answer is None  # its puncher had gone: no answer
        assert punching[0].at > PUNCH_TIMEOUT

    asyncio.run(run())


def test_without_a_relay_a_client_past_its_limit_gives_up_at_once() -> None:
    async def run() -> None:
        net = FakeNet(asyncio.get_running_loop())
        net.client.punch_budget.begin()  # a random punch of ours is running
        punch = net.punch(relayed=False, keep=False)
        with pytest.raises(HolepunchError) as failed:
            await net.run(punch)
        assert failed.value.code == "HOLEPUNCH_ABORTED"
        assert not [r for r in net.rounds if r.punching] and not net.clock.long_waits

    asyncio.run(run())

