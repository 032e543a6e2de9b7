"""The puncher: sockets, probes and NAT sampling for one holepunch (hyperdht's holepuncher.js).

The decisions (which strategy, which address, how the NAT behaves) are the pure functions of
protocol/hyperdht/holepunch.py and protocol/hyperdht/nat.py; this class owns what they need
from the world: puncher sockets from the runtime, probes at TTL 5 and 64, the pings that
sample our NAT, and the timers between probes.  ``result`` resolves to the socket and address
of the punched path (initiator side) or fails with HOLEPUNCH_ABORTED.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from hyperswarm_hugin.actors.runtime import NodeRuntime
from hyperswarm_hugin.errors import HolepunchError
from hyperswarm_hugin.protocol.dht import messages as m
from hyperswarm_hugin.protocol.encoding import Address
from hyperswarm_hugin.protocol.hyperdht.constants import Firewall, coerce_firewall
from hyperswarm_hugin.protocol.hyperdht.holepunch import (
    BIRTHDAY_PAUSE,
    BIRTHDAY_SOCKETS,
    CONSISTENT_INTERVAL,
    CONSISTENT_TICKS,
    DEFAULT_TTL,
    HOLEPUNCH_TTL,
    MAX_REOPENS,
    PROBE_INTERVAL,
    RANDOM_PROBES,
    SERVER_FIRST_PROBE_DELAY,
    Strategy,
    next_probe_at,
    probe_this_tick,
    punch_strategy,
    random_port,
    unstable,
)
from hyperswarm_hugin.protocol.hyperdht.nat import NatAnalyzer

log = logging.getLogger(__name__)


class Puncher:
    """One side of one holepunch."""

    def __init__(self, runtime: NodeRuntime, *, initiator: bool, remote_firewall: int,
                 firewalled: bool = True, rng: random.Random | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 clock: Callable[[], float] | None = None) -> None:
        """``sleep`` waits between probes and ``clock`` reads the time they are scheduled by
        (default: the loop's; a test passes a fake clock's)."""
        self.runtime = runtime
        self._sleep = sleep
        self._clock = clock or runtime.loop.time
        self.initiator = initiator
        self.firewalled = firewalled
        self.rng = rng or random.Random()
        self.remote_firewall = remote_firewall
        self.remote_addresses: list[tuple[Address, bool]] = []  # (address, verified)
        self.remote_punching = False
        self.punching = False
        self.connected = False
        self.destroyed = False
        self.randomized = False
        self.on_abort: Callable[[], None] = lambda: None
        self.on_destroyed: Callable[[], None] = lambda: None  # after any end, abort or not
        self.on_punching: Callable[[], None] = lambda: None  # probing started (the punching round)
        self.result: asyncio.Future[tuple[int, Address]] = runtime.loop.create_future()
        self._sockets: list[int] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._punch_task: asyncio.Task[bool] | None = None
        self._reopening: asyncio.Task[bool] | None = None
        self.socket = self._acquire()
        self.nat = NatAnalyzer(firewalled)
        self._settled = asyncio.Event()
        self.probes_sent = 0  # every probe this puncher sent (a diagnostic)
        self.strategy: Strategy | None = None
        self._punch_started: float | None = None
        self._summarized = False
        self._start_sampling()

    # ------------------------------------------------------------------ sockets and probes

    def _acquire(self) -> int:
        number = self.runtime.open_socket(self._on_probe)
        self._sockets.append(number)
        return number

    def probe(self, address: Address, socket: int | None = None, *, low_ttl: bool = False) -> None:
        """One 1-byte probe to ``address``; TTL 5 opens our mapping without reaching their NAT."""
        self.probes_sent += 1
        self.runtime.send_probe(self.socket if socket is None else socket, address,
                                HOLEPUNCH_TTL if low_ttl else DEFAULT_TTL)

    def _summary(self, outcome: str) -> None:
        if self._punch_started is None or self._summarized:
            return
        self._summarized = True
        took = self._clock() - self._punch_started
        log.debug("puncher (%s, %s) %s after %.2f s: %d probes, %d sockets", "initiator" if self.initiator
                  else "server", self.strategy.value if self.strategy else "-", outcome, took, self.probes_sent,
                  len(self._sockets))

    def open_session(self, address: Address) -> None:
        self.probe(address, low_ttl=True)

    def _on_probe(self, socket: int, source: Address) -> None:
        if self.destroyed:
            return
        if not self.initiator:
            self.probe(source, socket)  # answer, so the initiator learns the path
            return
        if self.connected:
            return
        self.connected = True
        self.punching = False
        for other in self._sockets:
            if other != socket:
                self.runtime.release_socket(other)
        self._sockets = [socket]
        self.socket = socket
        self._end_randomized()
        self._cancel_tasks()
        self._summary(f"connected via {source[0]}:{source[1]}")
        if not self.result.done():
            self.result.set_result((socket, source))

    # ------------------------------------------------------------------ NAT sampling

    def _start_sampling(self) -> None:
        self._spawn(self._sample(retry=True))

    async def _sample(self, retry: bool) -> None:
        nat = self.nat
        status = await self.runtime.status()
        newest_first = [address for _, address in reversed(status.table)]
        targets = nat.sample_targets(newest_first)
        if targets:
            await asyncio.gather(*(self._ping(nat, address) for address in targets))
        if nat is not self.nat or self.destroyed:
            return
        if nat.sampled < nat.min_samples and retry:
            await self._sample(retry=False)
            return
        self._settled.set()

    async def _ping(self, nat: NatAnalyzer, address: Address) -> None:
        result = await self.runtime.request(address, m.PING, internal=True, retries=0, socket=self.socket)
        if result.response is None or nat is not self.nat:
            return
        nat.add(result.response.to, result.address)
        if nat.settled:
            self._settled.set()

    def add_sample(self, seen_as: Address, responder: Address) -> None:
        """Another sample of our puncher socket (a PEER_HOLEPUNCH reply's ``to``)."""
        self.nat.add(seen_as, responder)
        if self.nat.settled:
            self._settled.set()

    async def analyze(self, allow_reopen: bool) -> bool:
        """Wait for the NAT analysis; whether punching can work from here (with ``allow_reopen``,
        try up to three fresh sockets first, as for mobile NATs)."""
        await self._settled.wait()
        if not unstable(self.nat.firewall, self.remote_firewall):
            return True
        if not allow_reopen:
            return False
        if self._reopening is None:
            self._reopening = self.runtime.loop.create_task(self._reopen())
        return await asyncio.shield(self._reopening)

    async def _reopen(self) -> bool:
        for _ in range(MAX_REOPENS):
            if not unstable(self.nat.firewall, self.remote_firewall) or self.destroyed or self.connected \
                    or self.punching:
                break
            previous = self.socket
            self._sockets.remove(previous)
            self.socket = self._acquire()
            self.runtime.release_socket(previous)
            self.nat.stop()
            self.nat = NatAnalyzer(self.firewalled)
            self._settled = asyncio.Event()
            self._start_sampling()
            await self._settled.wait()
        return coerce_firewall(self.nat.firewall) is Firewall.CONSISTENT

    # ------------------------------------------------------------------ the remote side

    def update_remote(self, *, punching: bool, firewall: int, addresses: list[Address] | None,
                      verified_host: str | None) -> None:
        previous = {address[0] for address, verified in self.remote_addresses if verified}
        self.remote_addresses = [(address, address[0] == verified_host or address[0] in previous)
                                 for address in addresses or []]
        self.remote_firewall = firewall
        self.remote_punching = punching

    # ------------------------------------------------------------------ punching

    async def punch(self) -> bool:
        """Start punching (once); False when no strategy fits this pair of NATs."""
        if self._punch_task is None:
            self._punch_task = self.runtime.loop.create_task(self._punch())
        return await asyncio.shield(self._punch_task)

    async def _punch(self) -> bool:
        if self.destroyed or self.connected or not self.remote_addresses:
            return False
        self.punching = True
        verified = next((address for address, ok in self.remote_addresses if ok), None)
        strategy = punch_strategy(self.nat.firewall, self.remote_firewall, verified is not None)
        self.strategy, self._punch_started = strategy, self._clock()
        if strategy is Strategy.CONSISTENT:
            self.on_punching()
            self._spawn(self._consistent_probes())
            return True
        if strategy is None or verified is None:
            return False
        self.on_punching()
        self._begin_randomized()
        if strategy is Strategy.RANDOM_PORTS:
            self._spawn(self._random_port_probes(verified))
            return True
        await self._open_birthday_sockets(verified)
        if self.punching:
            self._spawn(self._birthday_probes(verified))
        return True

    async def _pause_until(self, due: float, interval: float) -> float:
        """Wait for the slot after ``due`` on a fixed schedule (see :func:`next_probe_at`);
        returns that slot."""
        now = self._clock()
        due = next_probe_at(due, now, interval)
        await self._sleep(max(0.0, due - now))
        return due

    async def _consistent_probes(self) -> None:
        if not self.initiator:
            await self._sleep(SERVER_FIRST_PROBE_DELAY)  # our fast-mode ping just went out
        tick, due = 0, self._clock()
        while self.punching and tick < CONSISTENT_TICKS:
            tick += 1
            for address, verified in self.remote_addresses:
                if probe_this_tick(verified, tick):
                    self.probe(address)
            if self.punching:
                due = await self._pause_until(due, CONSISTENT_INTERVAL)
        self._give_up()

    async def _random_port_probes(self, remote: Address) -> None:
        due = self._clock()
        for _ in range(RANDOM_PROBES):
            if not self.punching:
                break
            self.probe((remote[0], random_port(self.rng)))
            due = await self._pause_until(due, PROBE_INTERVAL)
        self._give_up()

    async def _open_birthday_sockets(self, remote: Address) -> None:
        while self.punching and len(self._sockets) < BIRTHDAY_SOCKETS:
            try:
                socket = self._acquire()
            except OSError as exc:  # out of file descriptors: punch with what we have
                log.debug("puncher socket not opened: %s", exc)
                return
            self.probe(remote, socket, low_ttl=True)
            if len(self._sockets) % 32 == 0:
                await asyncio.sleep(0)  # let the loop read replies while we open the rest

    async def _birthday_probes(self, remote: Address) -> None:
        await self._sleep(BIRTHDAY_PAUSE)
        index, low_ttl_rounds, due = 0, 1, self._clock()
        for _ in range(RANDOM_PROBES):
            if not self.punching:
                break
            if index >= len(self._sockets):
                index = 0
                low_ttl_rounds = max(0, low_ttl_rounds - 1)
            self.probe(remote, self._sockets[index], low_ttl=low_ttl_rounds > 0)
            index += 1
            due = await self._pause_until(due, PROBE_INTERVAL)
        self._give_up()

    def _give_up(self) -> None:
        if not self.connected:
            self.destroy()

    def _begin_randomized(self) -> None:
        if not self.randomized:
            self.randomized = True
            self.runtime.punch_budget.begin()

    def _end_randomized(self) -> None:
        if self.randomized:
            self.randomized = False
            self.runtime.punch_budget.end(self.runtime.loop.time())

    # ------------------------------------------------------------------ lifetime

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = self.runtime.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None and not self.destroyed:
            if isinstance(exc, RuntimeError):  # the node closed under us
                log.debug("puncher task stopped: %s", exc)
            else:
                log.warning("puncher task failed", exc_info=exc)
            self.destroy()

    def _cancel_tasks(self) -> None:
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()

    def finish(self) -> None:
        """The stream found its path another way (its first packet arrived): stop, no abort."""
        self.on_abort = lambda: None
        if not self.destroyed:
            self._summary("done: the stream's first packet arrived")
        self.destroy()

    def destroy(self) -> None:
        """Stop punching and release the sockets (a socket a stream was routed over stays open)."""
        if self.destroyed:
            return
        self.destroyed = True
        self.punching = False
        self._cancel_tasks()
        self.nat.stop()
        self._settled.set()
        if not self.connected:
            self._summary("gave up" if self.probes_sent else "ended")
            for socket in self._sockets:
                self.runtime.release_socket(socket)
            self._sockets = []
            self._end_randomized()
            if not self.result.done():
                self.result.set_exception(HolepunchError.aborted())
                self.result.exception()  # retrieved: nobody may be waiting any more
            self.on_abort()
        else:
            for socket in self._sockets:
                self.runtime.release_socket(socket)
            self._sockets = []
        self.on_destroyed()
