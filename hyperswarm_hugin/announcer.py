"""Keeps a listening server's record at the closest nodes (hyperdht-hugin's ``Announcer``).

The policy lives in :mod:`hyperswarm_hugin.protocol.hyperdht.announcer`; this drives it on a node's runtime: an
announce (FIND_PEER walk, then ANNOUNCE to the best three, a relay only on error 0), a ping
round of the relays every 3 s, announce again when too few answer or every ~5 minutes, and
UNANNOUNCE at the relays a new announce dropped and, on :meth:`Announcer.stop`, at the current ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from hyperswarm_hugin.actors.runtime import NodeRuntime
from hyperswarm_hugin.protocol.dht import messages as m
from hyperswarm_hugin.protocol.dht.query import QueryReply
from hyperswarm_hugin.protocol.encoding import Address
from hyperswarm_hugin.protocol.hugin import KeyPair
from hyperswarm_hugin.protocol.hyperdht import messages as h
from hyperswarm_hugin.protocol.hyperdht.announcer import (
    RETRY_MAX,
    AnnounceSchedule,
    RelayGenerations,
    Step,
    pick_best,
    too_few_answered,
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
        results = await asyncio.gather(*(self.runtime.ping(a) for a in relays))
        answered = sum(1 for r in results if r.ok)
        log.debug("ping round: %d of %d relays answered", answered, len(relays))
        self.stats.ping_rounds += 1
        if too_few_answered(answered, len(relays)):
            self.stats.relays_lost += 1
            log.info("%d of %d relays answered: announcing again", answered, len(relays))
        return self.schedule.after_pings(answered, len(relays), self.runtime.loop.time())

    async def _announce(self) -> tuple[Step, float]:
        self.stats.announces += 1
        self.generations.cycle()
        result = await self.runtime.query(self.target, h.FIND_PEER, nodes=self._closest)
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
            await self._unannounce_all(self.generations.dropped())
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
