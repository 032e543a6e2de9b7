"""The PEER_HOLEPUNCH rounds of hyperdht's connect.js and server.js (holepunch.md §2).

:func:`punch_to_server` is the client: round 0 through the server's relay (our NAT class and
addresses, a TTL-5 probe towards the server first: "fast open"), then the punch round with
host tokens, then the :class:`~hyperswarm_hugin.holepuncher.Puncher` until a probe comes back.
:class:`HolepunchSlots` is the server: one slot per handshake that needs punching, answering
each relayed round from the slot's puncher socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from hyperswarm_hugin.actors.messages import IncomingHolepunch
from hyperswarm_hugin.actors.runtime import NodeRuntime
from hyperswarm_hugin.errors import ConnectError, HolepunchError
from hyperswarm_hugin.holepuncher import Puncher
from hyperswarm_hugin.protocol.encoding import Address
from hyperswarm_hugin.protocol.hyperdht import messages as h
from hyperswarm_hugin.protocol.hyperdht.constants import Firewall, PayloadError
from hyperswarm_hugin.protocol.hyperdht.holepunch import (
    PUNCH_TIMEOUT,
    REMOTE_UNKNOWN_WAIT,
    RoundStep,
    SecurePayload,
    is_random_pair,
    pick_server_relay,
    punch_round_step,
    try_later_delay,
    waits_after,
)
from hyperswarm_hugin.protocol.hyperdht.payloads import HolepunchPayload, NoisePayload, RelayInfo

log = logging.getLogger(__name__)

HOLEPUNCH_RETRIES = 3


@dataclass
class _RoundReply:
    payload: HolepunchPayload
    peer_address: Address
    seen_as: Address
    responder: Address
    try_later: bool = False  # the server said TRY_LATER to our punching round (with a relay)


class ClientPunch:
    """The client's side of one holepunch (connect.js ``holepunch``, ``probeRound``, ``roundPunch``)."""

    def __init__(self, runtime: NodeRuntime, target: bytes, secret: bytes, server: NoisePayload,
                 *, firewalled: bool = True, relayed: bool = False, rng: random.Random | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """``relayed``: a blind relay is in play (either side named one; hyperdht's
        ``c.relayToken``), so a punch refused by the random-punch limit or the server's TRY_LATER
        waits 10-20 s and tries again instead of failing.  ``sleep`` does every wait of the
        rounds and of the puncher (a test passes a fake clock's)."""
        assert server.holepunch is not None
        self.runtime = runtime
        self.relayed = relayed
        self.rng = rng or random.Random()
        self._sleep = sleep
        self.try_later_waits = 0  # how often this punch waited to try again
        self.target = target
        self.holepunch_id = server.holepunch.id
        self.relays = server.holepunch.relays
        self.secure = SecurePayload(secret, os.urandom(32))
        self.round = 0
        self.puncher = Puncher(runtime, initiator=True, remote_firewall=server.firewall, firewalled=firewalled,
                               rng=self.rng, sleep=sleep)

    async def run(self, relay_address: Address, server_address: Address,
                  fast_open: bool = True) -> tuple[int, Address]:
        """Punch; the socket and remote address of the path, or a coded :class:`ConnectError`."""
        rounds = self.runtime.loop.create_task(self._rounds(relay_address, server_address, fast_open))
        result = self.puncher.result
        try:
            waiting: set[asyncio.Future[object]] = {rounds, result}  # type: ignore[arg-type]
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if result.done() and not result.exception():
                return result.result()
            if rounds.done() and (exc := rounds.exception()) is not None:
                # Node destroys the puncher on any failure of the rounds, and its abort is what
                # the caller sees: HOLEPUNCH_ABORTED, whatever the cause (kept as ``reason``).
                if isinstance(exc, HolepunchError):
                    raise HolepunchError.aborted(str(exc), reason=exc.reason) from exc
                raise exc
            return await result
        finally:
            rounds.cancel()
            if not (result.done() and not result.exception()):
                self.puncher.destroy()

    async def _rounds(self, relay_address: Address, server_address: Address, fast_open: bool) -> None:
        server_relay = pick_server_relay(self.relays, relay_address)
        token, peer_address = await self._probe_round(server_address if fast_open else None, server_relay,
                                                      retry=True)
        if server_relay.relay_address == relay_address and peer_address != server_address:
            # The server answered from another socket than the one it shook hands on.
            server_address = peer_address
            self.puncher.open_session(server_address)
        await self._punch_round(server_address, token, relay_address, server_relay)

    async def _exchange(self, peer_address: Address, relay: Address, payload: HolepunchPayload) -> _RoundReply:
        value = h.Holepunch(h.FROM_CLIENT, self.holepunch_id, self.secure.seal(payload), peer_address).encode()
        result = await self.runtime.request(relay, h.PEER_HOLEPUNCH, target=self.target, value=value,
                                            retries=HOLEPUNCH_RETRIES, socket=self.puncher.socket)
        if result.response is None or not result.response.value:
            raise HolepunchError(result.error or "REQUEST_TIMEOUT", "no holepunch reply from the relay")
        try:
            reply = h.Holepunch.decode(result.response.value)
        except Exception:  # DecodeError; anything malformed is the same bad reply
            raise HolepunchError.bad_reply() from None
        if reply.mode != h.REPLY:
            raise HolepunchError.bad_reply()
        remote = self.secure.open(reply.payload)
        if remote is None:
            raise HolepunchError.invalid()
        log.debug("holepunch round %d via %s: sent %s, got %s", payload.round, relay, payload, remote)
        responder = reply.peer_address or relay
        echoed = remote.remote_token is not None and payload.token is not None and remote.remote_token == payload.token
        if waits_after(remote.error, self.relayed, payload.punching):
            if echoed:  # hyperdht ignores this echo, and its retry (no token) then verifies nothing
                self.puncher.update_remote(punching=False, firewall=remote.firewall, addresses=remote.addresses,
                                           verified_host=peer_address[0])
            return _RoundReply(remote, responder, result.response.to, result.address, try_later=True)
        if remote.error != PayloadError.NONE:
            raise HolepunchError.remote_aborted(remote.error)
        self.puncher.update_remote(punching=remote.punching, firewall=remote.firewall, addresses=remote.addresses,
                                   verified_host=peer_address[0] if echoed else None)
        return _RoundReply(remote, responder, result.response.to, result.address)

    def _payload(self, *, punching: bool, remote_address: Address | None = None, token: bytes | None = None,
                 remote_token: bytes | None = None) -> HolepunchPayload:
        payload = HolepunchPayload(
            error=PayloadError.NONE, firewall=self.puncher.nat.firewall, round=self.round, connected=False,
            punching=punching, addresses=self.puncher.nat.advertised, remote_address=remote_address,
            token=token, remote_token=remote_token,
        )
        self.round += 1
        return payload

    async def _probe_round(self, server_address: Address | None, server_relay: RelayInfo,
                           retry: bool) -> tuple[bytes | None, Address]:
        puncher = self.puncher
        if server_address is not None:
            puncher.open_session(server_address)
        reply = await self._exchange(server_relay.peer_address, server_relay.relay_address,
                                     self._payload(punching=False, remote_address=server_address))
        puncher.add_sample(reply.seen_as, reply.responder)
        if puncher.remote_firewall == Firewall.UNKNOWN:
            await self._sleep(REMOTE_UNKNOWN_WAIT)  # let the server's fast-mode ping arrive first
        stable = await puncher.analyze(allow_reopen=False)
        if not stable:
            stable = await puncher.analyze(allow_reopen=True)
            if stable:
                return await self._probe_round(server_address, server_relay, retry=False)
        if (puncher.remote_firewall == Firewall.UNKNOWN or reply.payload.token is None) and retry:
            return await self._probe_round(server_address, server_relay, retry=False)
        if puncher.remote_firewall == Firewall.UNKNOWN or puncher.nat.firewall == Firewall.UNKNOWN:
            await self._abort(server_relay)
            raise HolepunchError.probe_timeout()
        if puncher.remote_firewall >= Firewall.RANDOM and puncher.nat.firewall >= Firewall.RANDOM:
            await self._abort(server_relay)
            raise HolepunchError.double_randomized()
        return reply.payload.token, reply.peer_address

    async def _punch_round(self, server_address: Address, remote_token: bytes | None, client_relay: Address,
                           server_relay: RelayInfo) -> None:
        """The punching round.  A randomized punch past our random-punch budget, or one the
        server answers with TRY_LATER, waits 10-20 s and asks again while a relay is in play;
        once delayed, the rounds go through the server's own relay (connect.js ``roundPunch``)."""
        puncher = self.puncher
        puncher.nat.freeze()
        budget = self.runtime.punch_budget
        randomized = is_random_pair(puncher.nat.firewall, puncher.remote_firewall)
        delayed = False
        while True:
            step = punch_round_step(randomized, budget.allows(self.runtime.loop.time()), self.relayed)
            if step is RoundStep.ABORT:
                raise HolepunchError.aborted("a random-NAT punch is already running or ran too recently")
            if step is RoundStep.WAIT:
                if not delayed:  # tell the server where we stand (and have our token echoed) first
                    delayed = True
                    await self._exchange(server_address, client_relay, self._payload(
                        punching=False, token=self.secure.token(server_address[0]), remote_token=remote_token))
                await self._try_later()
                continue
            if randomized:
                budget.begin()
            try:
                if delayed:
                    peer, relay, token = server_relay.peer_address, server_relay.relay_address, None
                else:
                    peer, relay, token = server_address, client_relay, self.secure.token(server_address[0])
                reply = await self._exchange(peer, relay, self._payload(punching=True, token=token,
                                                                        remote_token=remote_token))
            finally:
                if randomized:
                    budget.release()
            if not reply.try_later:
                break
            delayed = True
            await self._try_later()
        if not puncher.remote_punching:
            raise HolepunchError.remote_not_holepunching()
        if not await puncher.punch():
            raise HolepunchError.remote_not_holepunchable()

    async def _try_later(self) -> None:
        delay = try_later_delay(self.rng)
        self.try_later_waits += 1
        log.debug("holepunch: trying again in %.1f s (random-punch limit or TRY_LATER; a relay is in play)", delay)
        await self._sleep(delay)

    async def _abort(self, server_relay: RelayInfo) -> None:
        """Tell the server we give up (hyperdht-hugin 1.0.3 never manages to send this)."""
        payload = HolepunchPayload(error=PayloadError.ABORTED, firewall=Firewall.UNKNOWN, round=self.round)
        self.round += 1
        value = h.Holepunch(h.FROM_CLIENT, self.holepunch_id, self.secure.seal(payload),
                            server_relay.peer_address).encode()
        with contextlib.suppress(RuntimeError):
            await self.runtime.request(server_relay.relay_address, h.PEER_HOLEPUNCH, target=self.target,
                                       value=value, retries=0, socket=self.puncher.socket)


@dataclass
class _Slot:
    puncher: Puncher
    secure: SecurePayload | None = None  # once the handshake that opened the slot is answered
    round: int = 0
    timer: asyncio.TimerHandle | None = None
    relayed: bool = False  # a blind relay is in play for this handshake (hyperdht's ``hs.relayToken``)


class HolepunchSlots:
    """A server's punches in progress, by the id it sent in its handshake reply (server.js
    ``_holepunches``, ``_onpeerholepunch``)."""

    def __init__(self, runtime: NodeRuntime, *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """``sleep`` waits between the punchers' probes (a test passes a fake clock's)."""
        self.runtime = runtime
        self._sleep = sleep
        self._slots: dict[int, _Slot] = {}
        self._next_id = 0
        self.relays: list[RelayInfo] = []
        self.try_later = 0  # punching rounds answered TRY_LATER (random-punch limit), with or without a relay

    def open(self, remote_firewall: int, *, relayed: bool = False) -> tuple[int, Puncher]:
        """A slot for a handshake that needs punching; its puncher is dropped after 10 s without
        a punching round (hyperdht's HANDSHAKE_INITIAL_TIMEOUT) unless :meth:`keep` is called
        first, and the slot with it.  ``relayed``: a blind relay is in play, so a punching round
        past the random-punch limit is told TRY_LATER and the puncher stays for the next one."""
        slot_id = self._free_id()
        puncher = Puncher(self.runtime, initiator=False, remote_firewall=remote_firewall, sleep=self._sleep)
        slot = _Slot(puncher, relayed=relayed)
        self._slots[slot_id] = slot
        slot.timer = self.runtime.loop.call_later(PUNCH_TIMEOUT, puncher.destroy)
        puncher.on_destroyed = lambda: self._forget(slot_id, slot)
        return slot_id, puncher

    def keep(self, slot_id: int, puncher: Puncher) -> None:
        """The relay paired: the puncher stays (no 10 s limit) until the connection closes or the
        punch ends, so the client can still punch and move the stream to a direct path (server.js
        clears ``prepunching`` when the relay pairs)."""
        slot = self._slots.get(slot_id)
        if slot is not None and slot.puncher is puncher and slot.timer is not None:
            slot.timer.cancel()
            slot.timer = None

    def secure(self, slot_id: int, holepunch_secret: bytes) -> None:
        """The handshake is done: its holepunch secret seals this slot's rounds."""
        slot = self._slots.get(slot_id)
        if slot is not None:
            slot.secure = SecurePayload(holepunch_secret, os.urandom(32))

    def _forget(self, slot_id: int, slot: _Slot) -> None:
        if slot.timer is not None:
            slot.timer.cancel()
            slot.timer = None
        if self._slots.get(slot_id) is slot:
            del self._slots[slot_id]

    def close(self) -> None:
        for slot in list(self._slots.values()):
            slot.puncher.destroy()
        self._slots.clear()

    def _free_id(self) -> int:
        slot_id = 0
        while slot_id in self._slots:
            slot_id += 1
        return slot_id

    def on_holepunch(self, event: IncomingHolepunch) -> None:
        msg: h.Holepunch = event.holepunch
        slot = self._slots.get(msg.id)
        if slot is None or slot.secure is None or msg.peer_address is None:
            log.debug("holepunch for slot %d: %s", msg.id, "no such slot" if slot is None else "not ready")
            return
        self.runtime.loop.create_task(self._answer(event, slot))

    async def _answer(self, event: IncomingHolepunch, slot: _Slot) -> None:
        try:
            payload = await self._round(event, slot)
        except RuntimeError:  # the node closed
            return
        if payload is None:
            return
        msg: h.Holepunch = event.holepunch
        assert slot.secure is not None
        log.debug("holepunch slot %d answers %s from socket %s", msg.id, payload[0], payload[1])
        value = h.Holepunch(h.FROM_SERVER, 0, slot.secure.seal(payload[0]), msg.peer_address).encode()
        self.runtime.answer_handshake(event.request, event.source, payload[1], value, as_response=False)

    async def _round(self, event: IncomingHolepunch, slot: _Slot) -> tuple[HolepunchPayload, int | None] | None:
        msg: h.Holepunch = event.holepunch
        assert msg.peer_address is not None and slot.secure is not None
        puncher = slot.puncher
        if puncher.destroyed:
            return self._abort(slot)
        remote = slot.secure.open(msg.payload)
        if remote is None:
            return None
        from_our_relay = any(r.relay_address == event.source for r in self.relays)
        if remote.error != PayloadError.NONE:
            slot.round = max(slot.round, remote.round)
            return self._abort(slot)
        token = slot.secure.token(msg.peer_address[0])
        echoed = from_our_relay and remote.remote_token is not None and remote.remote_token == token
        if event.socket == puncher.socket:
            puncher.add_sample(event.request.to, event.source)
        if remote.round >= slot.round:
            slot.round = remote.round
            puncher.update_remote(punching=remote.punching, firewall=remote.firewall, addresses=remote.addresses,
                                  verified_host=msg.peer_address[0] if echoed else None)
        stable = await puncher.analyze(allow_reopen=False)
        if puncher.destroyed:
            return None
        if not puncher.remote_punching and not stable:
            stable = await puncher.analyze(allow_reopen=True)
            if puncher.destroyed:
                return None
            if not stable:
                return self._abort(slot)
        advertised = puncher.nat.advertised or []
        if puncher.nat.firewall in (Firewall.CONSISTENT, Firewall.OPEN) and remote.remote_address is not None \
                and remote.remote_address in advertised:
            puncher.probe(msg.peer_address)  # fast mode: the client opened its side already
        if puncher.remote_punching:
            if slot.timer is not None:
                slot.timer.cancel()
                slot.timer = None
            if is_random_pair(puncher.nat.firewall, puncher.remote_firewall) and \
                    not self.runtime.punch_budget.allows(self.runtime.loop.time()):
                self.try_later += 1
                if not slot.relayed:
                    return self._abort(slot, PayloadError.TRY_LATER)
                # With a relay the client waits and punches again: answer as usual, from the
                # puncher's socket, and keep the puncher.
                return self._reply(slot, puncher, remote, token if from_our_relay else None,
                                   PayloadError.TRY_LATER), puncher.socket
            if not await puncher.punch():
                return None if puncher.destroyed else self._abort(slot)
            if puncher.destroyed:
                return None
        if puncher.nat.firewall != Firewall.UNKNOWN:
            puncher.nat.freeze()
        return self._reply(slot, puncher, remote, token if from_our_relay else None), puncher.socket

    @staticmethod
    def _reply(slot: _Slot, puncher: Puncher, remote: HolepunchPayload, token: bytes | None,
               error: PayloadError = PayloadError.NONE) -> HolepunchPayload:
        return HolepunchPayload(
            error=error, firewall=puncher.nat.firewall, round=slot.round, connected=puncher.connected,
            punching=puncher.punching, addresses=puncher.nat.advertised, remote_address=None,
            token=token, remote_token=remote.token,
        )

    def _abort(self, slot: _Slot, error: PayloadError = PayloadError.ABORTED) -> tuple[HolepunchPayload, None]:
        """An abort, sent from the node's own socket (server.js: the puncher's may be closed)."""
        payload = HolepunchPayload(error=error, firewall=Firewall.UNKNOWN, round=slot.round)
        slot.puncher.destroy()
        return payload, None


def connect_error_of(exc: BaseException) -> ConnectError:
    """A coded error for whatever ended a punch."""
    if isinstance(exc, ConnectError):
        return exc
    return HolepunchError.aborted(str(exc) or type(exc).__name__)
