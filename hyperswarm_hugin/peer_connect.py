"""hyperdht's connect and listen flows (hyperdht.md §9) for the loopback and open-network paths.

``listen`` announces a server's key at the closest nodes, answers PEER_HANDSHAKEs (directly or
through relays) and hands out a :class:`Connection` per accepted client.  ``connect`` finds a
server by public key, runs the Noise IK handshake through a relay and opens the UDX stream to
the address the server advertised.  The Hugin barrier runs in the AuthActor on both sides:
a server refuses a bad ``mid`` before allocating anything; a client told a bad ``mid`` fails
at once with :class:`ServerRefused`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hyperswarm_hugin.actors.messages import AdmitHandshake, CheckPeer, ConfigureAuth, IncomingHandshake, Verdict
from hyperswarm_hugin.actors.runtime import NodeRuntime
from hyperswarm_hugin.actors.udx_io import StreamTransport
from hyperswarm_hugin.connection import Connection
from hyperswarm_hugin.errors import ConnectError, HolepunchError, ServerRefused
from hyperswarm_hugin.local_addresses import local_addresses
from hyperswarm_hugin.protocol.admission import RateLimiter
from hyperswarm_hugin.protocol.dht.node import SERVER
from hyperswarm_hugin.protocol.encoding import Address
from hyperswarm_hugin.protocol.errors import DecodeError
from hyperswarm_hugin.protocol.hugin import GroupKey, KeyPair
from hyperswarm_hugin.protocol.hyperdht import messages as h
from hyperswarm_hugin.protocol.hyperdht.constants import Firewall
from hyperswarm_hugin.protocol.hyperdht.holepunch import is_private, match_address
from hyperswarm_hugin.protocol.hyperdht.paths import PathKind, choose_path
from hyperswarm_hugin.protocol.hyperdht.payloads import (
    HolepunchInfo,
    NoisePayload,
    RelayInfo,
    RelayThroughInfo,
    UdxInfo,
)
from hyperswarm_hugin.protocol.hyperdht.signing import blake2b_256
from hyperswarm_hugin.protocol.noise import HandshakeError, NoiseHandshake
from hyperswarm_hugin.relay_choice import RelayThrough, check_relay_through, select_relay

if TYPE_CHECKING:
    from hyperswarm_hugin.announcer import Announcer
    from hyperswarm_hugin.blind_relay import RelayedPath
    from hyperswarm_hugin.holepunch import ClientPunch
    from hyperswarm_hugin.holepuncher import Puncher

log = logging.getLogger(__name__)

HANDSHAKE_MEMORY = 10.0
HANDSHAKE_INITIAL_TIMEOUT = 10.0  # hyperdht: an accepted stream with no packet from the client is dropped
PUNCH_RATE, PUNCH_BURST = 4.0, 32  # punchers a server opens (each pings DHT nodes from a socket of its own)
MAX_UNSTARTED = 256  # accepted connections waiting for the client's first packet; past it the oldest goes
HANDSHAKE_RETRIES = 2  # 3 transmissions, 1 s apart: a silent (refusing) server costs 3 s per relay
MAX_RELAYS = 3


def public_address(status: Any, server_port: int) -> Address | None:
    """Where clients reach our server socket directly, or None (dht-rpc's ``remoteAddress``): not
    firewalled, and the sampled address names the server socket's port (samples taken on the
    client socket name its own port, where nothing listens for handshakes)."""
    if status.firewalled or status.public_address is None:
        return None
    host, port = status.public_address
    if port != server_port or host == "0.0.0.0":
        return None
    return (host, port)


@dataclass
class ServerStats:
    handshakes: int = 0
    accepted: int = 0
    never_started: int = 0  # accepted, but the client sent no packet within HANDSHAKE_INITIAL_TIMEOUT
    refused: dict[str, int] = field(default_factory=dict)
    holepunched: int = 0  # accepted clients whose first packet ended a punch in progress
    relayed: int = 0  # accepted clients paired through a blind relay
    upgraded: int = 0  # relayed clients whose stream moved to a direct path later


class Server:
    """A listening server on one DHT node (hyperdht's ``createServer`` + ``listen``)."""

    def __init__(self, runtime: NodeRuntime, key_pair: KeyPair, *, group: GroupKey | None = None,
                 firewall: Callable[[bytes, Any], bool] | None = None,
                 on_connection: Callable[[Connection], None] | None = None,
                 admit: Callable[[bytes], str | None] | None = None,
                 on_refused: Callable[[str, bytes | None], None] | None = None,
                 share_local_address: bool = True, relay_through: RelayThrough = None,
                 holepunch: bool = True) -> None:
        """``admit(remote_public_key)`` runs after the group and firewall checks passed and returns
        a refusal reason or None; ``on_refused(reason, remote_public_key or None)`` sees every refusal.
        ``relay_through`` (a blind relay's key, a list, or a function returning one or None) pairs
        each client that must holepunch through that relay too; ``holepunch=False`` never punches
        (hyperdht's ``holepunch: false``: such clients come through a relay or not at all)."""
        self.runtime = runtime
        self.key_pair = key_pair
        self.group = group
        self.target = blake2b_256(key_pair.public_key)
        self.on_connection = on_connection or (lambda conn: None)
        self.relays: list[RelayInfo] = []
        self.relay_addresses: list[Address] = []
        self.stats = ServerStats()
        self.connections: set[Connection] = set()
        self._unstarted: dict[Connection, None] = {}  # oldest first
        self._punch_budget = RateLimiter(PUNCH_RATE, PUNCH_BURST, 1)
        self._recent: dict[bytes, tuple[float, list[tuple[Address, int, bytes, bool]]]] = {}
        self._public: Address | None = None
        self._firewall = firewall
        self._admit = admit
        self._on_refused = on_refused
        self._announcer: Announcer | None = None
        from hyperswarm_hugin.holepunch import HolepunchSlots  # a client-only peer never loads it

        self._punches = HolepunchSlots(runtime)
        self._share_local_address = share_local_address
        self._relay_through = check_relay_through(relay_through)
        self._relaying: set[asyncio.Task[None]] = set()
        self._holepunch = holepunch
        self.mid = runtime.configure_auth(ConfigureAuth(group, key_pair, firewall))

    async def listen(self) -> None:
        """Start answering handshakes and announce ourselves at the closest nodes; the
        :class:`~hyperswarm_hugin.announcer.Announcer` then pings the relays every 3 s and
        announces again when too few answer, or every ~5 minutes."""
        status = await self.runtime.status()
        self._public = public_address(status, self.runtime.server_address[1])
        self.runtime.serve(self.target, self._on_handshake, self._punches.on_holepunch)
        await self._announce()

    async def _announce(self) -> None:
        """Start the announcer: returns once its first announce is done (its module loads
        here: a client never announces)."""
        from hyperswarm_hugin.announcer import Announcer

        self._announcer = Announcer(self.runtime, self.key_pair, self.target, self._set_relays)
        await self._announcer.start()

    def _set_relays(self, relays: list[RelayInfo]) -> None:
        """The nodes that stored our record (they answered ANNOUNCE with error 0)."""
        self.relays = relays
        self._punches.relays = relays
        self.relay_addresses = ([self._public] if self._public else []) + [r.relay_address for r in relays]
        self.relay_addresses = self.relay_addresses[:MAX_RELAYS]

    async def close(self) -> None:
        """Stop answering, take our record back from the relays, close our connections."""
        self.runtime.serve(self.target, None)
        self._punches.close()
        for task in list(self._relaying):
            task.cancel()
        if self._announcer is not None:
            await self._announcer.stop()
        for conn in list(self.connections):
            await conn.close()

    # ------------------------------------------------------------------ handshakes

    def _refuse(self, reason: str, remote_public_key: bytes | None = None) -> None:
        self.stats.refused[reason] = self.stats.refused.get(reason, 0) + 1
        log.info("refused a handshake: %s", reason)
        if self._on_refused is not None:
            self._on_refused(reason, remote_public_key)

    def _on_handshake(self, event: IncomingHandshake) -> None:
        msg: h.Handshake = event.handshake
        now = time.monotonic()
        self._recent = {k: v for k, v in self._recent.items() if v[0] > now}
        cached = self._recent.get(msg.noise)
        if cached is not None:  # the same msg1 through another relay: the same msg2
            if cached[1]:
                self._answer(event, cached[1][0][2], cached[1][0][1])
            return
        self.stats.handshakes += 1
        direct = msg.mode == h.FROM_CLIENT
        client_address = event.source if direct or msg.peer_address is None else msg.peer_address
        relayed_for = None if direct else msg.peer_address  # only as honest as the relay: never a key alone
        admitted = self.runtime.ask_auth(AdmitHandshake(0, event.source, event.now, relayed_for))
        if not isinstance(admitted, Verdict) or not admitted.accepted:
            self._refuse((admitted.reason if isinstance(admitted, Verdict) else None) or "auth")
            return
        hs = NoiseHandshake(self.key_pair, initiator=False)
        try:
            payload = NoisePayload.decode(hs.recv(msg.noise))
        except (HandshakeError, DecodeError):
            self._refuse("bad-handshake")
            return
        remote_key = hs.remote_public_key
        assert remote_key is not None
        verdict = self.runtime.ask_auth(CheckPeer(0, remote_key, payload.mid, event.source, event.now, payload,
                                                 relayed_for))
        if not isinstance(verdict, Verdict) or not verdict.accepted:
            self._refuse((verdict.reason if isinstance(verdict, Verdict) else None) or "auth", remote_key)
            return
        if payload.version != 1 or payload.udx is None:
            self._refuse("incompatible", remote_key)  # hyperdht would try to send an error here and crash
            return
        if self._admit is not None and (reason := self._admit(remote_key)) is not None:
            self._refuse(reason, remote_key)
            return
        # hyperdht computes our address per handshake: the node may have become reachable.
        self._public = public_address(self.runtime.status_now(), self.runtime.server_address[1])
        transport = self.runtime.create_stream(SERVER)
        puncher = None
        punch_id = 0
        pairing: tuple[bytes, bytes, bool] | None = None
        our_relay = None
        if direct or payload.firewall == Firewall.OPEN:
            transport.connect(payload.udx.id, client_address)
        else:
            transport.connect(payload.udx.id)  # the client's first packet tells us where it is
            if (relay_key := select_relay(self._relay_through)) is not None:
                from hyperswarm_hugin.blind_relay import new_token  # loaded only by a peer that relays
                our_relay = RelayThroughInfo(relay_key, new_token())
                pairing = (our_relay.public_key, our_relay.token, True)
            elif payload.relay_through is not None:
                pairing = (payload.relay_through.public_key, payload.relay_through.token, False)
            if self._public is None and self._holepunch and \
                    not self._same_network(client_address, event.request.to, payload) \
                    and self._punch_budget.allow(None, event.now):  # past it: no punching for this one
                punch_id, puncher = self._punches.open(payload.firewall, relayed=pairing is not None)
                transport.on_routed = self._routed(puncher)
                if pairing is None:  # with a relay coming, a failed punch is no failure
                    puncher.on_abort = transport.destroy
        local = local_addresses(self.runtime.server_address) if self._share_local_address else []
        addresses = ([self._public] if self._public else []) + [a for a in local if a != self._public]
        reply = NoisePayload(
            firewall=Firewall.OPEN if self._public else Firewall.UNKNOWN,
            holepunch=None if self._public else HolepunchInfo(punch_id, list(self.relays)),
            addresses4=addresses,
            udx=UdxInfo(transport.id),
            secret_stream_version=1,
            relay_through=our_relay,
            relay_addresses=list(self.relay_addresses),
            mid=self.mid,
        )
        try:
            msg2 = hs.send(reply.encode())
        except HandshakeError:
            if puncher is not None:
                puncher.destroy()
            transport.destroy()
            self._refuse("bad-handshake")
            return
        assert hs.result is not None
        # Answer from the puncher socket: the relay tells the client where that socket is.
        socket = event.socket
        if puncher is not None:
            self._punches.secure(punch_id, hs.result.holepunch_secret)
            socket = puncher.socket
        self._recent[msg.noise] = (now + HANDSHAKE_MEMORY, [(event.source, socket, msg2, direct)])
        self._answer(event, msg2, socket)
        conn = Connection(transport, hs.result)
        self.connections.add(conn)
        self.stats.accepted += 1
        if pairing is not None:
            self._relay(conn, transport, pairing, puncher, punch_id)
        conn.add_close_callback(lambda: self.connections.discard(conn))
        if puncher is not None:  # a connection dropped before its first packet frees its punch sockets
            conn.add_close_callback(puncher.destroy)
        # Handed out (and counted against the swarm's caps) once the client's first packet
        # arrived; a client that sends none is dropped after HANDSHAKE_INITIAL_TIMEOUT, or
        # sooner when MAX_UNSTARTED newer ones wait.
        self._unstarted[conn] = None
        conn.add_close_callback(lambda: self._unstarted.pop(conn, None))
        if len(self._unstarted) > MAX_UNSTARTED:
            self._never_started(next(iter(self._unstarted)))
        transport.expect_start(HANDSHAKE_INITIAL_TIMEOUT, lambda: self._started(conn),
                               lambda: self._never_started(conn))
        if puncher is not None:
            self._wait_for_the_punch(transport, puncher)

    @staticmethod
    def _wait_for_the_punch(transport: StreamTransport, puncher: Puncher) -> None:
        """Once the client's punching round started our punch, its first packet may come only
        when the probes meet, well after 10 s: hyperdht clears its 10 s limit then (server.js
        ``prepunching``) and drops the stream with the puncher's abort.  Here the wait for the
        first packet stops while the puncher punches and starts again (10 s) when it ends, in
        case a relay still brings the client."""
        started, ended = puncher.on_punching, puncher.on_destroyed

        def punching() -> None:
            started()
            transport.stop_start_timeout()

        def punch_ended() -> None:
            ended()
            transport.start_timeout(HANDSHAKE_INITIAL_TIMEOUT)

        puncher.on_punching, puncher.on_destroyed = punching, punch_ended

    def _relay(self, conn: Connection, transport: StreamTransport, pairing: tuple[bytes, bytes, bool],
               puncher: Puncher | None, punch_id: int) -> None:
        """Pair ``transport`` through the blind relay too (hyperdht's ``_relayConnection``); a
        direct path found first (the client's first packet) wins and the relay is let go.  A
        client whose punch succeeds after the pairing moves the stream to the direct path: its
        packets then arrive on our puncher's socket, and we follow (hyperdht 6.34)."""
        key, token, initiator = pairing
        from hyperswarm_hugin.blind_relay import pair_through_relay

        async def run() -> None:
            try:
                path = await pair_through_relay(self.runtime, key, token, is_initiator=initiator,
                                                transport=transport, unless_routed=True)
            except ConnectError as exc:
                log.info("relay pairing failed: %s", exc)
                if transport.remote_address is None:
                    conn.destroy(exc)
                return
            if path is None:
                return
            self.stats.relayed += 1
            conn.relayed = True
            if puncher is not None:  # no 10 s limit now: the client may punch (again) later
                self._punches.keep(punch_id, puncher)
            path.on_direct = conn.went_direct
            path.on_upgrade = self._upgraded(puncher)
            conn.add_close_callback(path.close)

        task = self.runtime.loop.create_task(run())
        self._relaying.add(task)
        task.add_done_callback(self._relaying.discard)

        def stop_pairing() -> None:
            task.cancel()

        conn.add_close_callback(stop_pairing)

    def _upgraded(self, puncher: Puncher | None) -> Callable[[], None]:
        def upgraded() -> None:
            self.stats.upgraded += 1
            if puncher is not None:
                puncher.finish()

        return upgraded

    def _started(self, conn: Connection) -> None:
        self._unstarted.pop(conn, None)
        if not conn.closed:
            self.on_connection(conn)

    def _never_started(self, conn: Connection) -> None:
        self._unstarted.pop(conn, None)
        self.stats.never_started += 1
        log.debug("dropped an accepted connection whose client sent nothing (%d so far)", self.stats.never_started)
        conn.destroy(TimeoutError("the client sent no packet after the handshake"))

    def _routed(self, puncher: Puncher) -> Callable[[], None]:
        def routed() -> None:
            if not puncher.destroyed:  # the client's first packet ended a live punch
                self.stats.holepunched += 1
            puncher.finish()

        return routed

    def _same_network(self, client: Address, us: Address, payload: NoisePayload) -> bool:
        """server.js: a client behind our own public address with a private address next to ours
        reaches us directly; no punching."""
        if client[0] != us[0] or not self._share_local_address:
            return False
        private = [a for a in payload.addresses4 if is_private(a[0])]
        if not private:
            return False
        return match_address([a[0] for a in local_addresses(self.runtime.server_address)], private) is not None

    def _answer(self, event: IncomingHandshake, msg2: bytes, socket: int) -> None:
        msg: h.Handshake = event.handshake
        if msg.mode == h.FROM_CLIENT:
            value = h.Handshake(h.REPLY, msg2).encode()
            self.runtime.answer_handshake(event.request, event.source, socket, value, as_response=True)
            return
        to = msg.relay_address if msg.mode == h.FROM_SECOND_RELAY and msg.relay_address else event.source
        value = h.Handshake(h.FROM_SERVER, msg2, peer_address=msg.peer_address).encode()
        self.runtime.answer_handshake(event.request, to, socket, value, as_response=False)



async def _handshake_via(runtime: NodeRuntime, address: Address, target: bytes, value: bytes,
                         retries: int) -> tuple[Address, Any, h.Handshake] | None:
    """Send msg1 through ``address``; the server's REPLY, or None."""
    result = await runtime.request(address, h.PEER_HANDSHAKE, target=target, value=value, retries=retries)
    if result.response is None or not result.response.value:
        return None
    try:
        reply = h.Handshake.decode(result.response.value)
    except DecodeError:
        return None
    if reply.mode != h.REPLY or not reply.noise:
        return None
    return address, result.response, reply


async def connect(runtime: NodeRuntime, key_pair: KeyPair, remote_public_key: bytes, *,
                  group: GroupKey | None = None, relay_addresses: list[Address] | None = None,
                  local_connection: bool = True, fast_open: bool = True,
                  relay_through: RelayThrough = None, holepunch: bool = True) -> Connection:
    """Connect to the server listening on ``remote_public_key``; returns the encrypted connection.

    ``local_connection=False`` never takes the server's local address (hyperdht's
    ``localConnection``): behind one NAT, or on one host, the peers then holepunch.
    ``fast_open=False`` sends no probe before the first holepunch round (``fastOpen``).
    ``relay_through`` (a blind relay's key, a list, or a function returning one) pairs the
    stream through that relay while punching runs; whichever path comes first is used.
    ``holepunch=False`` never punches: without a relay that is HOLEPUNCH_ABORTED."""
    if len(remote_public_key) != 32:
        raise ValueError("a public key is 32 bytes")
    started = time.perf_counter()  # not the loop's clock: uvloop's is whole milliseconds
    mid = group.sign(key_pair.public_key) if group is not None else None
    target = blake2b_256(remote_public_key)
    status = runtime.reachability_now()
    ours = public_address(status, runtime.server_address[1])
    # A Hugin client never says it is reachable: the server then opens its side only when our
    # first packet arrives, and we send none until its mid verified.  An outsider's server (an
    # upstream peer that checks no mid) so never sees a connection from us, not even briefly.
    claim_open = ours is not None and group is None
    relay_key = select_relay(relay_through)
    relay_token = None
    if relay_key is not None:
        from hyperswarm_hugin.blind_relay import new_token  # loaded only by a peer that relays
        relay_token = new_token()
    transport = runtime.create_stream(SERVER)
    try:
        local = local_addresses(runtime.server_address) if local_connection else []
        payload = NoisePayload(
            firewall=Firewall.OPEN if claim_open else Firewall.UNKNOWN,
            addresses4=([ours] if ours else []) + [a for a in local if a != ours],
            udx=UdxInfo(transport.id),
            secret_stream_version=1,
            relay_through=RelayThroughInfo(relay_key, relay_token)
            if relay_key is not None and relay_token is not None else None,
            mid=mid,
        )
        hs = NoiseHandshake(key_pair, initiator=True, remote_public_key=remote_public_key)
        msg1 = hs.send(payload.encode())
        value = h.Handshake(h.FROM_CLIENT, msg1).encode()
        if group is not None:
            # The server's mid is most likely the one we would sign (keypear's signature is
            # deterministic, and a member holds the group key): make it while the handshake is
            # in flight, and group.verify then compares instead of checking a signature.
            runtime.loop.call_soon(group.sign, remote_public_key)
        answer = None
        for address in (relay_addresses or [])[:MAX_RELAYS]:  # where the server said it is reachable
            answer = await _handshake_via(runtime, address, target, value, retries=0)
            if answer is not None:
                break
        if answer is None:
            found = await runtime.query(target, h.FIND_PEER, nodes=relay_addresses or None)
            # Every node that answered with the record, in the order they answered (hyperdht
            # streams them), not only those that ended among the closest.
            candidates = [r for r in found.replies if r.value] or [r for r in found.closest if r.value]
            if not candidates:
                raise ConnectError("PEER_NOT_FOUND", "no node knows that public key")
            for reply in candidates[:2]:
                answer = await _handshake_via(runtime, reply.address, target, value, retries=HANDSHAKE_RETRIES)
                if answer is not None:
                    break
        if answer is None:
            raise ConnectError("PEER_CONNECTION_FAILED", "the server did not answer the handshake")
        relay, response, reply_msg = answer
        try:
            remote = NoisePayload.decode(hs.recv(reply_msg.noise))
        except (HandshakeError, DecodeError) as exc:
            raise ConnectError("PEER_CONNECTION_FAILED", f"bad handshake reply ({exc})") from None
        if remote.version != 1:
            raise ConnectError("SERVER_INCOMPATIBLE", "the server uses another protocol version")
        if remote.error or remote.udx is None:
            raise ConnectError("SERVER_ERROR", "the server sent no UDX stream")
        if group is not None and not group.verify(remote_public_key, remote.mid):
            raise ServerRefused("SERVER_ERROR", "verification failed: the server's mid is "
                                + ("missing" if remote.mid is None else "not signed by our group"))
        assert hs.result is not None
        server_address = reply_msg.peer_address or relay
        relayed = reply_msg.peer_address is not None
        transport.connect(remote.udx.id)
        path = choose_path(
            relayed=relayed, relay=relay, server_address=server_address, client_address=response.to,
            remote_firewall=remote.firewall,
            holepunchable=remote.holepunch is not None and bool(remote.holepunch.relays),
            remote_addresses=remote.addresses4, we_are_open=claim_open, local_connection=local_connection,
            local_hosts=[a[0] for a in local_addresses(runtime.server_address)])
        relayed_path: RelayedPath | None = None
        if path.kind in (PathKind.SERVER_ITSELF, PathKind.SERVER_ADDRESS):
            transport.set_remote_address(path.address)
        elif path.kind is PathKind.PASSIVE:
            pass  # we are reachable: the server connects to us
        elif path.kind is PathKind.LAN:
            assert path.address is not None
            ping = await runtime.ping(path.address)
            if not ping.ok:
                raise HolepunchError.aborted("the server's local address did not answer")
            transport.set_remote_address(path.address)
        else:
            pairing = None
            if relay_key is not None and relay_token is not None:
                pairing = (relay_key, relay_token, True)  # we chose the relay: we initiate
            elif remote.relay_through is not None:
                pairing = (remote.relay_through.public_key, remote.relay_through.token, False)
            from hyperswarm_hugin.holepunch import ClientPunch  # loaded by the first punch

            punch = ClientPunch(runtime, target, hs.result.holepunch_secret, remote,
                                firewalled=status.firewalled, relayed=pairing is not None) if holepunch else None
            relayed_path = await _punch_or_relay(runtime, transport, punch, relay, server_address, fast_open,
                                                 pairing)
        transport.schedule_flush()
        conn = Connection(transport, hs.result)
        conn.connect_started = started
        conn.connect_seconds = time.perf_counter() - started
        if relayed_path is not None:
            conn.relayed = True
            relayed_path.on_direct = conn.went_direct
            conn.add_close_callback(relayed_path.close)
        return conn
    except BaseException:
        transport.destroy()
        raise


async def _punch_or_relay(runtime: NodeRuntime, transport: StreamTransport, punch: ClientPunch | None, relay: Address,
                          server_address: Address, fast_open: bool,
                          pairing: tuple[bytes, bytes, bool] | None) -> RelayedPath | None:
    """Holepunch, and with ``pairing`` (relay key, token, initiator) pair through the blind relay
    at the same time: the first path that works carries the stream; if both fail, the punch's
    error (or the relay's).  When the relay comes first the punch goes on: if it succeeds the
    stream moves to the direct path and the relay is let go (hyperdht 6.34).  The relayed path
    is returned, to be closed with the connection."""
    if punch is None and pairing is None:
        raise HolepunchError.aborted("holepunching is off and no relay was given")
    tasks: set[asyncio.Task[Any]] = set()
    punching = None
    if punch is not None:
        punching = runtime.loop.create_task(punch.run(relay, server_address, fast_open))
        tasks.add(punching)
    if pairing is not None:
        from hyperswarm_hugin.blind_relay import pair_through_relay
        key, token, initiator = pairing
        tasks.add(runtime.loop.create_task(pair_through_relay(runtime, key, token, is_initiator=initiator,
                                                              transport=transport)))
    errors: list[BaseException] = []
    try:
        while tasks:
            done, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if punching is not None and punching in done and (exc := punching.exception()) is not None:
                errors.append(exc)
                done.discard(punching)
            if punching is not None and punching in done and punch is not None:
                socket, address = punching.result()
                log.debug("holepunched to %s on socket %d (local %s, remote %s)", address, socket,
                          punch.puncher.nat.firewall.name, Firewall(punch.puncher.remote_firewall).name)
                transport.route(runtime.endpoint(socket), address)
                punch.puncher.finish()
                return None
            for task in done:  # the relay's pairing
                if (exc := task.exception()) is not None:
                    errors.append(exc)
                    continue
                log.debug("paired through a blind relay")
                path: RelayedPath = task.result()
                if punching is not None and punch is not None and not punching.done():
                    tasks.discard(punching)  # punching goes on, behind the relayed stream
                    _upgrade_when_punched(runtime, punch, punching, path)
                return path
    finally:
        for task in tasks:
            task.cancel()
    raise errors[0]


def _upgrade_when_punched(runtime: NodeRuntime, punch: ClientPunch, punching: asyncio.Task[tuple[int, Address]],
                          path: RelayedPath) -> None:
    """Move the relayed stream of ``path`` to the punched path once ``punching`` succeeds; the
    punch stops when the connection closes or the stream moved another way."""

    def punched(task: asyncio.Task[tuple[int, Address]]) -> None:
        if task.cancelled():
            return
        if (exc := task.exception()) is not None:
            log.debug("no direct path after relaying: %s", exc)
            return
        socket, address = task.result()
        log.debug("holepunched to %s after relaying", address)
        path.upgrade(runtime.endpoint(socket), address)
        punch.puncher.finish()

    punching.add_done_callback(punched)
    def stop() -> None:
        punching.cancel()

    path.on_upgrade = punch.puncher.finish
    path.on_close = stop
