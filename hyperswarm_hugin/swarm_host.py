"""The swarm's host plumbing: it does what the SwarmActor asks and reports back (as hyperswarm's lib/).

:class:`SwarmHost` is the base of :class:`~hyperswarm_hugin.swarm.Hyperswarm`.  The actors decide;
the host runs announce / lookup queries, dials, closes connections, emits events and wakes the
actors up, and tells them each outcome as a message.  Connections and their bytes never pass
through an actor.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from hyperswarm_hugin.actors.auth_actor import BANNED, FIREWALL
from hyperswarm_hugin.actors.messages import (
    Admission,
    AdmitIncoming,
    BanPeer,
    CloseConnection,
    ConnectionEnded,
    ConnectionOpened,
    Dial,
    DialCheck,
    DialResult,
    FlushDone,
    IncomingConnection,
    PeerBanned,
    PeerView,
    QueryTopic,
    SetBan,
    SwarmTimer,
    SwarmUpdated,
    SwarmWake,
    TopicQueryDone,
    UnannounceTopic,
    Verdict,
)
from hyperswarm_hugin.connection import Connection
from hyperswarm_hugin.dht import DHT, DHTError
from hyperswarm_hugin.errors import RELAY_FALLBACK_CODES, ConnectError, ServerRefused
from hyperswarm_hugin.peer_connect import Server, connect
from hyperswarm_hugin.peer_info import PeerInfo
from hyperswarm_hugin.protocol.encoding import Address
from hyperswarm_hugin.protocol.hugin import GroupKey, KeyPair
from hyperswarm_hugin.protocol.swarm.discovery import QueryKind
from hyperswarm_hugin.relay_choice import check_relay_through, select_relay

if TYPE_CHECKING:
    from hyperswarm_hugin.discovery import TopicDiscovery

log = logging.getLogger(__name__)

EVENTS = ("connection", "update", "ban", "refused", "connect_error")


class SwarmDestroyed(RuntimeError):
    """The swarm was destroyed."""


SwarmRelayThrough = bytes | Sequence[bytes] | Callable[[bool, Any], "bytes | None"] | None
"""A relay key, a list of them, or ``(force, swarm) -> key or None`` (hyperswarm's relayThrough)."""


def swarm_relay_function(relay_through: SwarmRelayThrough) -> Callable[[bool, Any], bytes | None] | None:
    """hyperswarm's ``toRelayFunction``: keys are used when forced or when our NAT is random."""
    if relay_through is None:
        return None
    if callable(relay_through):
        return relay_through
    keys = check_relay_through(relay_through)

    def relay(force: bool, swarm: Any) -> bytes | None:
        return select_relay(keys) if force or swarm.randomized else None

    return relay


class SwarmHost:
    """Runs what the SwarmActor asks for and reports the outcomes back to it."""

    # Set by Hyperswarm before it calls SwarmHost.__init__.
    key_pair: KeyPair
    group: GroupKey | None
    _dht: DHT
    _firewall: Callable[[bytes, Any], bool] | None
    _relay_through: Callable[[bool, Any], bytes | None] | None
    _topics: dict[bytes, TopicDiscovery]
    _loop: asyncio.AbstractEventLoop
    destroyed: bool

    if TYPE_CHECKING:
        async def listen(self) -> None: ...

    def __init__(self) -> None:
        self._actor: Any = None
        self._server: Server | None = None
        self._listening: asyncio.Task[Server] | None = None
        self._unannouncing: dict[bytes, asyncio.Task[None]] = {}
        self._dials: dict[int, asyncio.Task[None]] = {}
        self._abandoned: set[int] = set()
        self._conns: dict[int, Connection] = {}
        self._opened: dict[int, Connection] = {}
        self._closed_bytes = [0, 0]  # raw bytes read / written by connections that closed
        self.peers: dict[bytes, PeerInfo] = {}
        self._listeners: dict[str, list[Callable[..., Any]]] = {e: [] for e in EVENTS}
        self._streams: list[asyncio.Queue[tuple[Connection, PeerInfo] | None]] = []
        self._flushes: dict[int, asyncio.Future[bool]] = {}
        self._ids = itertools.count(1)
        self._wake: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._updates = 0
        self._started = False
        self._force_relay: set[bytes] = set()  # peers a punch failed with: next time through the relay
        self.randomized = False  # our DHT node's NAT gives a new port per destination

    def _check_started(self) -> None:
        if self.destroyed:
            raise SwarmDestroyed("the swarm was destroyed")
        if not self._started:
            raise RuntimeError("start the swarm first (await swarm.start() or async with)")

    def _now(self) -> float:
        return self._dht.runtime.loop.time()

    def _tell(self, msg: Any) -> None:
        runtime = self._dht.runtime
        if self._actor is not None and runtime.system is not None:
            runtime.tell_actor(self._actor, msg)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("swarm task %s failed", task.get_coro(), exc_info=exc)

    async def _listened(self) -> None:
        if self._listening is not None:
            await asyncio.gather(asyncio.shield(self._listening), return_exceptions=True)

    async def _listen(self) -> Server:
        await self._update_nat()
        server = Server(self._dht.runtime, self.key_pair, group=self.group, firewall=self._firewall,
                        on_connection=self._on_server_connection, admit=self._admit,
                        on_refused=self._on_refused,
                        relay_through=(lambda: self._maybe_relay(False)) if self._relay_through else None)
        self._server = server
        await server.listen()
        return server

    async def _update_nat(self) -> None:
        status = await self._dht.status()
        self.randomized = status.public_address is not None and status.public_address[1] == 0

    def _maybe_relay(self, force: bool) -> bytes | None:
        """hyperswarm's ``_maybeRelayConnection``."""
        return self._relay_through(force, self) if self._relay_through is not None else None

    def _ban(self, public_key: bytes, banned: bool) -> None:
        self._dht.runtime.ask_auth(SetBan(public_key, banned))
        self._tell(BanPeer(public_key, banned, self._now()))

    def _on_actor_message(self, msg: Any) -> bool:
        handler = _HANDLERS.get(type(msg))
        if handler is None:
            return False
        if not self.destroyed or isinstance(msg, CloseConnection | FlushDone | UnannounceTopic):
            handler(self, msg)
        return True

    def _on_query(self, msg: QueryTopic) -> None:
        discovery = self._topics.get(msg.topic)
        if discovery is None:
            return
        if discovery.task is not None and not discovery.task.done():
            discovery.task.cancel()
        discovery.task = self._spawn(self._query(msg))

    async def _query(self, msg: QueryTopic) -> None:
        peers: tuple[tuple[bytes, tuple[Address, ...]], ...] = ()
        ok = True
        try:
            if msg.kind == QueryKind.ANNOUNCE:
                await self.listen()
                assert self._server is not None
                records = await self._dht.announce_and_lookup(msg.topic, self.key_pair,
                                                              self._server.relay_addresses)
            elif msg.kind == QueryKind.LOOKUP_UNANNOUNCE:
                records = await self._dht.lookup_and_unannounce(msg.topic, self.key_pair)
            else:
                records = await self._dht.lookup(msg.topic)
            peers = tuple((r.public_key, tuple(r.relay_addresses)) for r in records)
        except (DHTError, RuntimeError, OSError, ConnectError) as exc:
            log.info("query of topic %s failed: %s", msg.topic.hex()[:16], exc)
            ok = False
        self._tell(TopicQueryDone(msg.topic, msg.clock, ok, peers, self._now()))

    def _on_unannounce(self, msg: UnannounceTopic) -> None:
        async def unannounce() -> None:
            try:
                await self._dht.unannounce(msg.topic, self.key_pair)
            except RuntimeError as exc:
                log.info("unannounce of %s failed: %s", msg.topic.hex()[:16], exc)

        if not self._dht.runtime.closed:
            self._unannouncing[msg.topic] = self._loop.create_task(unannounce())

    def _on_dial(self, msg: Dial) -> None:
        verdict = self._dht.runtime.ask_auth(DialCheck(0, msg.public_key))
        if isinstance(verdict, Verdict) and not verdict.accepted:
            # BANNED here is a firewall ban the swarm had forgotten (its list is bounded): ban again.
            refused = verdict.reason in (FIREWALL, BANNED)
            if refused:
                self._emit_ban(msg.public_key, FIREWALL)
            self._tell(DialResult(msg.conn_id, msg.public_key, False, self._now(), refused=refused,
                                  error=verdict.reason))
            return
        task = self._dials[msg.conn_id] = self._spawn(self._dial(msg))

        def done(task: asyncio.Task[None]) -> None:
            if task.cancelled():  # also when cancelled before it ever ran
                self._dials.pop(msg.conn_id, None)
                self._tell(DialResult(msg.conn_id, msg.public_key, False, self._now(), error="cancelled"))

        task.add_done_callback(done)

    async def _dial(self, msg: Dial) -> None:
        try:
            relay_through = None
            if self._relay_through is not None:
                await self._update_nat()
                relay_through = self._maybe_relay(msg.public_key in self._force_relay)
            conn = await connect(self._dht.runtime, self.key_pair, msg.public_key, group=self.group,
                                 relay_addresses=list(msg.relay_addresses) or None, relay_through=relay_through)
        except Exception as exc:  # every failure is reported, or the swarm's slot would leak
            self._dials.pop(msg.conn_id, None)
            self._abandoned.discard(msg.conn_id)
            level = logging.INFO if isinstance(exc, ConnectError | RuntimeError | OSError) else logging.WARNING
            log.log(level, "connecting to %s failed: %r", msg.public_key.hex()[:16], exc)
            if isinstance(exc, ServerRefused):
                self._emit("refused", msg.public_key, "server-mid")
            if isinstance(exc, ConnectError):
                if self._relay_through is not None and exc.code in RELAY_FALLBACK_CODES:
                    self._force_relay.add(msg.public_key)  # hyperswarm's shouldForceRelaying
                self._emit("connect_error", msg.public_key, exc)
            self._tell(DialResult(msg.conn_id, msg.public_key, False, self._now(), error=str(exc)))
            return
        self._dials.pop(msg.conn_id, None)
        if msg.conn_id in self._abandoned:
            self._abandoned.discard(msg.conn_id)
            conn.destroy(ConnectionAbortedError("duplicate"))
            self._tell(DialResult(msg.conn_id, msg.public_key, False, self._now(), error="abandoned"))
            return
        self._track(msg.conn_id, conn)
        self._tell(DialResult(msg.conn_id, msg.public_key, True, self._now()))

    def _track(self, conn_id: int, conn: Connection) -> None:
        self._conns[conn_id] = conn

        def closed() -> None:
            self._closed_bytes[0] += conn.raw_bytes_read
            self._closed_bytes[1] += conn.raw_bytes_written
            self._conns.pop(conn_id, None)
            self._opened.pop(conn_id, None)
            self._tell(ConnectionEnded(conn_id, conn.remote_public_key, self._now()))

        conn.add_close_callback(closed)

    def _admit(self, public_key: bytes) -> str | None:
        if self.destroyed:
            return "destroyed"
        answer = self._dht.runtime.ask_actor(self._actor, AdmitIncoming(0, public_key), (Admission,))
        return None if isinstance(answer, Admission) and answer.accepted else (
            answer.reason if isinstance(answer, Admission) else "no-answer")

    def _on_server_connection(self, conn: Connection) -> None:
        key = conn.remote_public_key
        established = any(c.remote_public_key == key and c.raw_bytes_read > 0 and c.raw_bytes_written > 0
                          for c in self._opened.values())
        conn_id = -next(self._ids)  # the SwarmActor numbers dials 1, 2, ...; ours are negative
        self._track(conn_id, conn)
        self._tell(IncomingConnection(conn_id, key, established, self._now()))

    def _on_refused(self, reason: str, public_key: bytes | None) -> None:
        self._emit("refused", public_key, reason)
        if reason == FIREWALL and public_key is not None:
            self._emit_ban(public_key, reason)

    def _emit_ban(self, public_key: bytes, reason: str) -> None:
        self._tell(BanPeer(public_key, True, self._now(), by_firewall=True))

    def _on_close(self, msg: CloseConnection) -> None:
        if msg.conn_id in self._dials:
            # Let the handshake finish and then destroy the stream: cancelling halfway would leave
            # the server holding a connection nobody will ever send on.
            self._abandoned.add(msg.conn_id)
            return
        conn = self._conns.get(msg.conn_id)
        if conn is not None:
            conn.destroy(ConnectionAbortedError(msg.reason))

    def _on_opened(self, msg: ConnectionOpened) -> None:
        conn = self._conns.get(msg.conn_id)
        if conn is None:
            return
        self._opened[msg.conn_id] = conn
        info = self._peer_info(msg.public_key)
        info._state = replace(info._state, client=msg.client)  # its PeerActor's view follows
        self._emit("connection", conn, info)
        for queue in self._streams:
            queue.put_nowait((conn, info))

    def _peer_info(self, public_key: bytes) -> PeerInfo:
        info = self.peers.get(public_key)
        if info is None:
            info = self.peers[public_key] = PeerInfo(self, public_key)
        return info

    def _on_peer_view(self, msg: PeerView) -> None:
        if msg.state is None:
            self.peers.pop(msg.public_key, None)
        else:
            self._peer_info(msg.public_key)._state = msg.state

    def _on_banned(self, msg: PeerBanned) -> None:
        self._emit("ban", self._peer_info(msg.public_key), msg.reason)

    def _on_update(self, msg: SwarmUpdated) -> None:
        self._updates += 1
        self._emit("update")

    def _on_wake(self, msg: SwarmWake) -> None:
        if self._wake is not None:
            self._wake.cancel()
            self._wake = None
        if msg.at is not None:
            self._wake = self._loop.call_at(msg.at, self._on_timer, msg.at)

    def _on_timer(self, at: float) -> None:
        self._wake = None
        self._tell(SwarmTimer(max(at, self._now())))  # asyncio may run a timer a hair early

    def _on_flush_done(self, msg: FlushDone) -> None:
        fut = self._flushes.get(msg.request_id)
        if fut is not None and not fut.done():
            fut.set_result(msg.ok)

    def _emit(self, event: str, *args: Any) -> None:
        for listener in list(self._listeners[event]):
            try:
                listener(*args)
            except Exception:
                log.exception("a %r listener failed", event)


_HANDLERS: dict[type, Callable[[SwarmHost, Any], None]] = {
    QueryTopic: SwarmHost._on_query,
    UnannounceTopic: SwarmHost._on_unannounce,
    Dial: SwarmHost._on_dial,
    CloseConnection: SwarmHost._on_close,
    ConnectionOpened: SwarmHost._on_opened,
    PeerView: SwarmHost._on_peer_view,
    PeerBanned: SwarmHost._on_banned,
    SwarmUpdated: SwarmHost._on_update,
    SwarmWake: SwarmHost._on_wake,
    FlushDone: SwarmHost._on_flush_done,
}
