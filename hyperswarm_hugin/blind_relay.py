"""Blind relays (blind-relay 1.6 over Protomux, holepunch.md §4): a relay server, and the
pairing a peer does through one.

Two peers that cannot punch through to each other both connect to a relay node (an ordinary
hyperdht connection), open a ``blind-relay`` channel on it and send ``pair`` with the same
token (the side that chose the relay is the initiator).  The relay makes one relay stream per
side and answers each with its id; each peer then sends its raw UDX stream to that id at the
relay's address, and the relay passes every packet on to the other peer with only the stream
id rewritten.  The Noise handshake (and so the group barrier) stays end to end: the relay sees
encrypted packets only and needs no group key.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from hyperswarm_hugin.actors.runtime import NodeRuntime
from hyperswarm_hugin.actors.udp import UdpEndpoint
from hyperswarm_hugin.actors.udx_io import RelayLink, StreamTransport
from hyperswarm_hugin.connection import Connection
from hyperswarm_hugin.errors import ConnectError
from hyperswarm_hugin.protocol.blind_relay import (
    PAIR,
    PAIRING_TIMEOUT,
    PROTOCOL,
    TOKEN_SIZE,
    UNPAIR,
    Pair,
    Pairings,
    Unpair,
)
from hyperswarm_hugin.protocol.encoding import Address
from hyperswarm_hugin.protocol.errors import DecodeError
from hyperswarm_hugin.protocol.hugin import KeyPair
from hyperswarm_hugin.protocol.protomux import ChannelClosed, ChannelMessage, ChannelOpened, Mux

log = logging.getLogger(__name__)

def new_token() -> bytes:
    return os.urandom(TOKEN_SIZE)


# ---------------------------------------------------------------------- the peer's side

class RelayedPath:
    """A raw stream paired through a relay: the relay connection stays open while it is used.

    Until a direct path replaces it (hyperdht 6.34, docs/holepunch.md "From relayed to direct"):
    :meth:`upgrade` moves the stream there (``changeRemote``), a packet arriving on another socket
    than the relay's does the same (the firewall hook), and once the peer acknowledged what went
    through the relay and was heard on the direct path, the relay is let go and ``on_direct()``
    runs (``confirmDirectUpgrade``)."""

    def __init__(self, relay: Connection, transport: StreamTransport, direct_id: int) -> None:
        self.relay = relay
        self.transport = transport
        self.direct_id = direct_id  # the peer's own stream, as its handshake named it
        self.relay_route = relay.route  # where relayed packets come from
        self.upgraded = False
        self.on_upgrade: Callable[[], None] = lambda: None  # the stream moved (a punch is over)
        self.on_direct: Callable[[], None] = lambda: None  # the relay is let go
        self.on_close: Callable[[], None] = lambda: None  # the stream is gone (stop punching)
        transport.on_foreign = self._on_foreign

    def close(self) -> None:
        if self.transport.on_foreign == self._on_foreign:
            self.transport.on_foreign = None
        self.transport.on_direct_data = None
        self.relay.destroy()
        self.on_close()

    def _on_foreign(self, endpoint: UdpEndpoint, source: Address) -> None:
        if (endpoint, source) != self.relay_route:  # not a late packet through the relay
            self.upgrade(endpoint, source)

    def upgrade(self, endpoint: UdpEndpoint, address: Address) -> None:
        """Send over ``endpoint`` to ``address`` (a punched path) from now on."""
        if self.upgraded or self.relay.closed:
            return
        self.upgraded = True
        self.transport.on_foreign = None
        log.debug("relayed stream %d moves to %s", self.transport.id, address)
        self.transport.change_remote(endpoint, self.direct_id, address, self._confirm)
        self.on_upgrade()

    def _confirm(self) -> None:
        """Everything sent through the relay arrived: an empty UDX message shows the peer the
        direct path (no application bytes); the relay goes once the peer is heard there."""
        if self.relay.closed or self.transport.stream.closed:
            return
        self.transport.on_direct_data = self._heard_directly
        self.transport.send_message(b"")

    def _heard_directly(self) -> None:
        log.debug("relayed stream %d is direct now: relay let go", self.transport.id)
        self.relay.destroy()
        self.on_direct()


async def pair_through_relay(runtime: NodeRuntime, relay_key: bytes, token: bytes, *, is_initiator: bool,
                             transport: StreamTransport, timeout: float = PAIRING_TIMEOUT,
                             unless_routed: bool = False) -> RelayedPath | None:
    """Connect to the relay, pair ``transport`` under ``token`` and route it through the relay;
    ConnectError RELAY_ABORTED when that fails within ``timeout`` (hyperdht: 15 s).  With
    ``unless_routed``, a transport that found its path meanwhile keeps it: the relay is let go
    and None returned."""
    from hyperswarm_hugin.peer_connect import connect  # the relay is reached by an ordinary connect

    try:
        relay = await asyncio.wait_for(connect(runtime, KeyPair.random(), relay_key), timeout)
    except (ConnectError, TimeoutError) as exc:
        raise ConnectError("RELAY_ABORTED", f"the relay could not be reached ({exc})") from exc
    try:
        remote_id = await asyncio.wait_for(_pair(relay, token, is_initiator, transport.id), timeout)
    except (TimeoutError, DecodeError, ConnectionError) as exc:
        relay.destroy()
        raise ConnectError("RELAY_ABORTED", f"the relay did not pair us ({exc!r})") from exc
    except BaseException:
        relay.destroy()
        raise
    if unless_routed and transport.remote_address is not None:
        relay.destroy()
        return None
    direct_id = transport.stream.remote_id
    assert direct_id is not None, "the stream is connected to the peer's id before pairing"
    transport.connect(remote_id)
    endpoint, address = relay.route
    transport.route(endpoint, address)
    return RelayedPath(relay, transport, direct_id)


async def _pair(relay: Connection, token: bytes, is_initiator: bool, stream_id: int) -> int:
    mux = Mux()
    channel, frame = mux.open(PROTOCOL, relay.public_key)
    relay.write(frame)
    relay.write(mux.message(channel, PAIR, Pair(is_initiator, token, stream_id).encode()))
    while True:
        frame = await relay.read()
        if not frame:
            raise ConnectionError("the relay closed the connection")
        events, replies = mux.receive(frame)
        for reply in replies:
            relay.write(reply)
        for event in events:
            if isinstance(event, ChannelClosed) and event.local_id == channel:
                raise ConnectionError("the relay closed the channel")
            if isinstance(event, ChannelMessage) and event.local_id == channel and event.type == PAIR:
                answer = Pair.decode(event.payload)
                if answer.token == token and answer.is_initiator == is_initiator:
                    return answer.id


# ---------------------------------------------------------------------- the relay server

@dataclass
class RelayStats:
    sessions: int = 0
    pairings_requested: int = 0
    pairings_matched: int = 0
    pairings_cancelled: int = 0
    bad_frames: int = 0


@dataclass(eq=False)
class _Session:
    conn: Connection
    mux: Mux
    channel: int | None = None
    links: dict[bytes, RelayLink] = field(default_factory=dict)

    def send_pair(self, pair: Pair) -> None:
        if self.channel is not None and self.mux.is_open(self.channel) and not self.conn.closed:
            self.conn.write(self.mux.message(self.channel, PAIR, pair.encode()))


class BlindRelayServer:
    """Relays for anyone who connects (a blind-relay ``Server``): serve it on a listening
    :class:`~hyperswarm_hugin.peer_connect.Server` with ``on_connection=relay.accept``."""

    def __init__(self, runtime: NodeRuntime) -> None:
        self.runtime = runtime
        self.pairings = Pairings()
        self.stats = RelayStats()
        self._sessions: set[_Session] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def active_links(self) -> int:
        return sum(len(s.links) for s in self._sessions)

    def accept(self, conn: Connection) -> None:
        session = _Session(conn, Mux(accepts=lambda protocol, channel_id: protocol == PROTOCOL))
        self._sessions.add(session)
        self.stats.sessions += 1
        task = self.runtime.loop.create_task(self._serve(session))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for session in list(self._sessions):
            session.conn.destroy()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, session: _Session) -> None:
        conn = session.conn
        try:
            async for frame in conn:
                try:
                    events, replies = session.mux.receive(frame)
                    for reply in replies:
                        conn.write(reply)
                    for event in events:
                        self._on_event(session, event)
                except DecodeError as exc:
                    self.stats.bad_frames += 1
                    log.info("closing a relay session: %s", exc)
                    conn.destroy(exc)
                    return
        except ConnectionError:
            pass
        finally:
            self._end(session)

    def _on_event(self, session: _Session, event: ChannelOpened | ChannelMessage | ChannelClosed) -> None:
        if isinstance(event, ChannelOpened):
            if session.channel is None:
                session.channel = event.local_id
        elif isinstance(event, ChannelClosed):
            if event.local_id == session.channel:
                session.conn.end()
        elif event.local_id == session.channel and event.type == PAIR:
            self._on_pair(session, Pair.decode(event.payload))
        elif event.local_id == session.channel and event.type == UNPAIR:
            token = Unpair.decode(event.payload).token
            if self.pairings.cancel(token):
                self.stats.pairings_cancelled += 1
            elif (link := session.links.pop(token, None)) is not None:
                self.runtime.streams.unlink(link)
                self.stats.pairings_cancelled += 1

    def _on_pair(self, session: _Session, pair: Pair) -> None:
        self.stats.pairings_requested += 1
        matched = self.pairings.request(session, pair)
        if matched is None:
            return
        initiator, responder = matched
        self.stats.pairings_matched += 1
        ours = self.runtime.streams.relay_pair(initiator.remote_id, responder.remote_id)
        for link, relay_link in zip((initiator, responder), ours, strict=True):
            owner = link.session
            assert isinstance(owner, _Session)
            owner.links[pair.token] = relay_link
            owner.send_pair(Pair(link.is_initiator, pair.token, relay_link.id))

    def _end(self, session: _Session) -> None:
        self._sessions.discard(session)
        self.pairings.drop_session(session)
        for link in session.links.values():
            self.runtime.streams.unlink(link)
        session.links.clear()
