"""The puncher's probing per pair of NAT classes, on a fake clock (no sockets): which strategy
runs, which addresses it probes, at which TTL and when (holepuncher.js), how a probe ends it."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from hyperswarm_hugin.errors import HolepunchError
from hyperswarm_hugin.holepuncher import Puncher
from hyperswarm_hugin.protocol.encoding import Address
from hyperswarm_hugin.protocol.hyperdht.constants import Firewall
from hyperswarm_hugin.protocol.hyperdht.holepunch import (
    BIRTHDAY_SOCKETS,
    PROBE_INTERVAL,
    RANDOM_PROBES,
    PunchBudget,
    next_probe_at,
)

REMOTE = ("198.18.1.2", 40000)
OTHER = ("198.18.1.3", 40001)


@dataclass
class FakeRuntime:
    """What a Puncher needs of a NodeRuntime: sockets, probes and time (all recorded)."""

    loop: asyncio.AbstractEventLoop
    now: float = 0.0
    probes: list[tuple[float, int, Address, int]] = field(default_factory=list)
    open_sockets: set[int] = field(default_factory=set)
    handlers: dict[int, Callable[[int, Address], None]] = field(default_factory=dict)
    punch_budget: PunchBudget = field(default_factory=PunchBudget)
    _next: int = 2

    def open_socket(self, on_probe: Callable[[int, Address], None]) -> int:
        number, self._next = self._next, self._next + 1
        self.open_sockets.add(number)
        self.handlers[number] = on_probe
        return number

    def release_socket(self, number: int) -> None:
        self.open_sockets.discard(number)

    def send_probe(self, number: int, address: Address, ttl: int) -> None:
        assert number in self.open_sockets, "a probe from a released socket"
        self.probes.append((self.now, number, address, ttl))

    async def status(self) -> Any:
        return type("Status", (), {"table": []})()

    async def request(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no DHT node to ping: the test sets the NAT class")

    def sleeper(self, late: Callable[[], float] = lambda: 0.0) -> Callable[[float], Awaitable[None]]:
        """A sleep on the fake clock that wakes ``late()`` seconds after it was due (a busy loop)."""
        async def sleep(seconds: float) -> None:
            self.now += seconds + late()
            await asyncio.sleep(0)

        return sleep


async def puncher(*, initiator: bool, local: Firewall, remote: Firewall, remote_addresses: list[tuple[Address, bool]],
                  late: Callable[[], float] = lambda: 0.0) -> tuple[FakeRuntime, Puncher]:
    rt = FakeRuntime(asyncio.get_running_loop())
    p = Puncher(rt, initiator=initiator, remote_firewall=remote, rng=random.Random(1),  # type: ignore[arg-type]
                sleep=rt.sleeper(late), clock=lambda: rt.now)
    p.nat.firewall = local
    hosts = {a[0] for a, ok in remote_addresses if ok}
    p.update_remote(punching=True, firewall=remote, addresses=[a for a, _ in remote_addresses],
                    verified_host=next(iter(hosts), None))
    return rt, p


async def finish(p: Puncher) -> None:
    """Let the puncher's background probing run to its end on the fake clock."""
    for _ in range(20_000):
        if p.destroyed:
            return
        await asyncio.sleep(0)
    raise AssertionError("the puncher never ended")


def test_consistent_pair_probes_verified_each_second_and_unverified_on_ticks_4_and_8() -> None:
    async def run() -> None:
        rt, p = await puncher(initiator=True, local=Firewall.CONSISTENT, remote=Firewall.CONSISTENT,
                              remote_addresses=[(REMOTE, True), (OTHER, False)])
        assert await p.punch()
        await finish(p)
        to_verified = [t for t, _, a, ttl in rt.probes if a == REMOTE]
        to_other = [t for t, _, a, ttl in rt.probes if a == OTHER]
        assert to_verified == [float(i) for i in range(10)]
        assert to_other == [3.0, 7.0]
        assert all(ttl == 64 for *_, ttl in rt.probes)
        with pytest.raises(HolepunchError) as failed:
            p.result.result()
        assert failed.value.code == "HOLEPUNCH_ABORTED"
        assert rt.open_sockets == set()  # every socket released

    asyncio.run(run())


def test_the_server_waits_a_second_before_consistent_probing() -> None:
    async def run() -> None:
        rt, p = await puncher(initiator=False, local=Firewall.CONSISTENT, remote=Firewall.OPEN,
                              remote_addresses=[(REMOTE, True)])
        assert await p.punch()
        await finish(p)
        assert rt.probes[0][0] == 1.0 and len(rt.probes) == 10

    asyncio.run(run())


def test_consistent_against_random_probes_random_ports_of_the_verified_host() -> None:
    async def run() -> None:
        rt, p = await puncher(initiator=True, local=Firewall.CONSISTENT, remote=Firewall.RANDOM,
                              remote_addresses=[((REMOTE[0], 0), True)])
        assert await p.punch()
        assert rt.punch_budget.active == 1  # a randomized punch counts against the node's budget
        await finish(p)
        assert len(rt.probes) == RANDOM_PROBES
        assert {a[0] for _, _, a, _ in rt.probes} == {REMOTE[0]}
        assert len({a[1] for _, _, a, _ in rt.probes}) > RANDOM_PROBES * 0.9
        assert all(1000 <= a[1] < 65536 for _, _, a, _ in rt.probes)
        assert rt.probes[-1][0] == pytest.approx((RANDOM_PROBES - 1) * 0.02)
        assert rt.punch_budget.active == 0 and rt.punch_budget.last_end is not None

    asyncio.run(run())


def test_random_against_consistent_opens_birthday_sockets_then_cycles_them() -> None:
    async def run() -> None:
        rt, p = await puncher(initiator=True, local=Firewall.RANDOM, remote=Firewall.CONSISTENT,
                              remote_addresses=[(REMOTE, True)])
        assert await p.punch()
        opening = rt.probes[:BIRTHDAY_SOCKETS - 1]
        assert len({s for _, s, _, _ in opening}) == BIRTHDAY_SOCKETS - 1  # one probe from each new socket
        assert all(ttl == 5 and a == REMOTE for _, _, a, ttl in opening)
        await finish(p)
        cycling = rt.probes[BIRTHDAY_SOCKETS - 1:]
        assert len(cycling) == RANDOM_PROBES
        first_round, later = cycling[:BIRTHDAY_SOCKETS], cycling[BIRTHDAY_SOCKETS:]
        assert all(ttl == 5 for *_, ttl in first_round) and all(ttl == 64 for *_, ttl in later)
        assert cycling[0][0] == pytest.approx(0.1)  # a pause after opening them all

    asyncio.run(run())


@pytest.mark.parametrize(("local", "remote", "verified"), [
    (Firewall.RANDOM, Firewall.RANDOM, True),
    (Firewall.RANDOM, Firewall.CONSISTENT, False),
    (Firewall.CONSISTENT, Firewall.RANDOM, False),
])
def test_no_strategy_means_no_punch(local: Firewall, remote: Firewall, verified: bool) -> None:
    async def run() -> None:
        rt, p = await puncher(initiator=True, local=local, remote=remote, remote_addresses=[(REMOTE, verified)])
        assert not await p.punch()
        assert rt.probes == []
        p.destroy()

    asyncio.run(run())


def test_the_first_probe_back_is_the_path_and_the_other_sockets_go() -> None:
    async def run() -> None:
        rt, p = await puncher(initiator=True, local=Firewall.RANDOM, remote=Firewall.CONSISTENT,
                              remote_addresses=[(REMOTE, True)])
        assert await p.punch()
        lucky = sorted(rt.open_sockets)[100]
        rt.handlers[lucky](lucky, ("198.18.1.2", 40123))
        assert p.result.result() == (lucky, ("198.18.1.2", 40123))
        assert rt.open_sockets == {lucky} and not p.punching
        p.finish()  # the stream took the socket: the puncher lets go of it too
        assert rt.open_sockets == set()

    asyncio.run(run())


def test_a_server_echoes_each_probe_it_gets() -> None:
    async def run() -> None:
        rt, p = await puncher(initiator=False, local=Firewall.CONSISTENT, remote=Firewall.CONSISTENT,
                              remote_addresses=[(REMOTE, True)])
        rt.handlers[p.socket](p.socket, ("198.18.7.7", 5000))
        assert rt.probes == [(0.0, p.socket, ("198.18.7.7", 5000), 64)]
        assert not p.result.done()
        p.destroy()

    asyncio.run(run())


def test_the_next_probe_is_due_one_interval_after_the_last_one_was() -> None:
    assert next_probe_at(1.0, now=1.0, interval=0.02) == pytest.approx(1.02)
    assert next_probe_at(1.0, now=1.015, interval=0.02) == pytest.approx(1.02)  # woke late: a shorter wait
    assert next_probe_at(1.0, now=1.03, interval=0.02) == pytest.approx(1.02)  # a little behind: at once
    assert next_probe_at(1.0, now=1.5, interval=0.02) == pytest.approx(1.52)  # a stall: again from now, no burst


def _gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


@pytest.mark.parametrize(("local", "remote", "address"), [
    (Firewall.CONSISTENT, Firewall.RANDOM, (REMOTE[0], 0)),   # random ports of their host
    (Firewall.RANDOM, Firewall.CONSISTENT, REMOTE),           # the birthday sockets' round robin
])
def test_probes_leave_on_a_fixed_20_ms_schedule_even_when_the_loop_wakes_late(
        local: Firewall, remote: Firewall, address: Address) -> None:
    """Every wait ends 5-15 ms late (a loop busy with other work): the probes still leave 20 ms
    apart on average, so the 1750 probes take the ~35 s of hyperdht's window, not 50 s."""
    async def run() -> None:
        lateness = random.Random(7)
        rt, p = await puncher(initiator=True, local=local, remote=remote, remote_addresses=[(address, True)],
                              late=lambda: lateness.uniform(0.005, 0.015))
        assert await p.punch()
        opened = BIRTHDAY_SOCKETS - 1 if local is Firewall.RANDOM else 0  # each new socket's first probe
        await finish(p)
        times = [t for t, *_ in rt.probes[opened:]]
        assert len(times) == RANDOM_PROBES
        gaps = _gaps(times)
        assert sum(gaps) / len(gaps) == pytest.approx(PROBE_INTERVAL, rel=0.01)
        assert max(gaps) < PROBE_INTERVAL + 0.015 + 1e-9  # one late wake, never an accumulated delay
        assert min(gaps) > PROBE_INTERVAL - 0.015 - 1e-9  # and no bursts

    asyncio.run(run())


def test_after_a_stall_probing_resumes_at_the_interval_without_a_burst() -> None:
    async def run() -> None:
        wakes = iter([0.0] * 10 + [0.5] + [0.0] * 5000)
        rt, p = await puncher(initiator=True, local=Firewall.CONSISTENT, remote=Firewall.RANDOM,
                              remote_addresses=[((REMOTE[0], 0), True)], late=lambda: next(wakes))
        assert await p.punch()
        await finish(p)
        gaps = _gaps([t for t, *_ in rt.probes])
        assert max(gaps) == pytest.approx(0.52)  # the stall itself
        assert min(gaps) == pytest.approx(PROBE_INTERVAL)  # then 20 ms again, not a catch-up burst
        assert len(rt.probes) == RANDOM_PROBES

    asyncio.run(run())
