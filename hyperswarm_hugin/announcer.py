"""Keeps a listening server's record at the closest nodes (hyperdht-hugin's ``Announcer``).

The policy lives in :mod:`hyperswarm_hugin.protocol.hyperdht.announcer`; this drives it on a node's runtime: an
announce (FIND_PEER walk, then ANNOUNCE to the best three, a relay only on error 0), a ping
round of the relays every 3 s, announce again when too few answer or every ~5 minutes, and
UNANNOUNCE at the relays a new announce dropped and, on :meth:`Announcer.stop`, at the current ones.
Relays that miss a ping round are no longer offered (``on_relays``) from that moment on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass

from hyperswarm_hugin.actors.messages import FindNodeResult
from hyperswarm_hugin.actors.runtime import NodeRuntime
from hyperswarm_hugin.protocol.dht import messages as m
from hyperswarm_hugin.protocol.dht.query import QueryReply
from hyperswarm_hugin.protocol.encoding import Address
from hyperswarm_hugin.protocol.hugin import KeyPair
from hyperswarm_hugin.protocol.hyperdht import messages as h
from hyperswarm_hugin.protocol.hyperdht.announcer import (
    RELAY_PING_RETRIES,
    RETRY_MAX,
    AnnounceSchedule,
    RelayGenerations,
    Step,
    lost,
    pick_best,
    still_avoided,
    too_few_answered,
    walk_early,
    walk_seeds,
)
from hyperswarm_hugin.protocol.hyperdht.payloads import RelayInfo
from hyperswarm_hugin.protocol.hyperdht.signing import sign_announce

log = logging.getLogger(__name__)


@dataclass
class AnnouncerStats:
    announces: int = 0
    ping_rounds: int = 0
    relays_lost: int = 0  # ping rounds that found too few relays answering (an announce followed)
    unannounced: int = 0  # UNANNOUNCEs sent to relays we dropped or left


class Announcer:
    """One server's announcements of ``target`` (``hash(key_pair.public_key)``).

    ``on_relays(relays)`` is called after each announce with the nodes that stored our record.
    """

    def __init__(self, runtime: NodeRuntime, key_pair: KeyPair, target: bytes,
                 on_relays: Callable[[list[RelayInfo]], None]) -> None:
        self.runtime = runtime
        self.key_pair = key_pair
        self.target = target
        self.on_relays = on_relays
        self.relays: list[RelayInfo] = []
        self.generations = RelayGenerations()
        self.schedule = AnnounceSchedule()
        self.stats = AnnouncerStats()
        self._record = h.PeerRecord(key_pair.public_key, [])
        self._encoded = self._record.encode()
        self._closest: list[Address] | None = None
        self._silent: set[Address] = set()  # relays that missed the last ping round
        self._walk: asyncio.Task[FindNodeResult] | None = None  # the next announce's walk, started early
        self._walked_around: set[Address] = set()  # the relays that walk leaves out
        self._silent_since: dict[Address, float] = {}  # relays that went silent, and when
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    async def start(self) -> None:
        """Announce once (returns when that announce is done), then keep it up in the background."""
        step, when = await self._announce()
        if not self._stopped:
            self._task = self.runtime.loop.create_task(self._run(step, when))

    async def stop(self) -> None:
        """Stop announcing and take our record back from the current relays."""
        self._stopped = True
        self._drop_walk()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if not self.runtime.closed:
            await self._unannounce_all(self.generations.current())

    async def _run(self, step: Step, when: float) -> None:
        loop = self.runtime.loop
        while not self._stopped and not self.runtime.closed:
            await asyncio.sleep(max(0.0, when - loop.time()))  # the schedule's next step, not a sync
            try:
                step, when = await (self._announce() if step is Step.ANNOUNCE else self._ping_round())
            except RuntimeError:
                if self.runtime.closed:
                    return
                log.exception("announcer step failed")
                step, when = Step.ANNOUNCE, loop.time() + RETRY_MAX

    async def _ping_round(self) -> tuple[Step, float]:
        relays = self.generations.current()
        missed = lost(relays, await asyncio.gather(*(self._ping(a) for a in relays)))
        for _ in range(RELAY_PING_RETRIES):
            if not missed:
                break
            if self._walk is None and walk_early(missed, relays) and not self._stopped:
                # The replacement walk runs while the relays that missed get their next try.
                log.debug("relays %s missed a ping: walking meanwhile", missed)
                self._walk = self._start_walk(missed)
            missed = lost(missed, await asyncio.gather(*(self._ping(a) for a in missed)))
        silent = missed
        answered = len(relays) - len(silent)
        log.debug("ping round: %d of %d relays answered", answered, len(relays))
        self.stats.ping_rounds += 1
        if too_few_answered(answered, len(relays)):
            self.stats.relays_lost += 1
            log.info("%d of %d relays answered: announcing again", answered, len(relays))
        if silent and not self._stopped:
            # Clients are no longer sent to them while the next announce looks for others.
            self._silent.update(silent)
            self._silent_since.update(dict.fromkeys(silent, self.runtime.loop.time()))
            self.relays = [r for r in self.relays if r.relay_address not in self._silent]
            self.on_relays(self.relays)
        step, when = self.schedule.after_pings(answered, len(relays), self.runtime.loop.time())
        if step is not Step.ANNOUNCE:
            self._drop_walk()  # every relay answered its retry: the early walk is not needed
        return step, when

    async def _ping(self, relay: Address) -> bool:
        """One try (1 s); the ping round retries the relays that missed it."""
        res = await self.runtime.request(relay, m.PING, internal=True, retries=0)
        return res.response is not None

    def _start_walk(self, leave_out: Collection[Address]) -> asyncio.Task[FindNodeResult]:
        """The FIND_PEER walk of the next announce, neither seeded with nor visiting ``leave_out``
        nor the relays that went silent lately."""
        self._walked_around = set(leave_out)
        avoid = sorted(self._walked_around.union(still_avoided(self._silent_since, self.runtime.loop.time())))
        return self.runtime.loop.create_task(self.runtime.query(
            self.target, h.FIND_PEER, nodes=walk_seeds(self._closest, avoid), avoid=avoid or None))

    def _drop_walk(self) -> None:
        if self._walk is not None:
            self._walk.cancel()
            self._walk = None
        self._walked_around = set()

    async def _announce(self) -> tuple[Step, float]:
        self.stats.announces += 1
        self.generations.cycle()
        silent, self._silent = self._silent, set()
        if self._walk is None or silent != self._walked_around:
            self._drop_walk()
            self._walk = self._start_walk(silent)
        walk, self._walk = self._walk, None
        self._walked_around = set()
        result = await walk
        log.debug("walk done (%d closest); announcing", len(result.closest))
        best = pick_best(result.closest)
        stored = await asyncio.gather(*(self._commit(reply) for reply in best))
        relays = [RelayInfo(reply.address, reply.to) for reply, ok in zip(best, stored, strict=True) if ok]
        for relay in relays:
            self.generations.stored(relay.relay_address)
        self._closest = [r.address for r in result.closest] or None
        log.debug("announced at %d of %d closest: relays %s", len(relays), len(result.closest),
                  [r.relay_address for r in relays])
        if not self._stopped:
            self.relays = relays
            self.on_relays(relays)
            await self._unannounce_all([a for a in self.generations.dropped() if a not in silent])
        return self.schedule.after_announce(len(relays), self.runtime.loop.time())

    async def _commit(self, reply: QueryReply) -> bool:
        """ANNOUNCE at ``reply``'s node; True when it answered with error 0 (it stored us)."""
        assert reply.id is not None and reply.token is not None
        signature = sign_announce(self.key_pair, self.target, reply.id, reply.token, self._encoded)
        res = await self.runtime.request(
            reply.address, h.ANNOUNCE, target=self.target, token=reply.token,
            value=h.Announce(peer=self._record, signature=signature).encode())
        return res.response is not None and res.response.error == m.OK

    async def _unannounce_all(self, relays: list[Address]) -> None:
        await asyncio.gather(*(self._unannounce(a) for a in relays))

    async def _unannounce(self, relay: Address) -> None:
        """Ask ``relay`` for a token (FIND_PEER) and, if it holds our record, UNANNOUNCE there."""
        res = (await self.runtime.request(relay, h.FIND_PEER, target=self.target)).response
        if res is None or res.id is None or res.token is None or not res.value:
            return
        signature = sign_announce(self.key_pair, self.target, res.id, res.token, self._encoded, unannounce=True)
        self.stats.unannounced += 1
        await self.runtime.request(relay, h.UNANNOUNCE, target=self.target, token=res.token,
                                   value=h.Announce(peer=self._record, signature=signature).encode())
