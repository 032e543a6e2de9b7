"""Hyperswarm: find and connect peers by topic, in asyncio, with Hugin's group barrier.

``Hyperswarm`` is the host of a SwarmActor (with its TopicActors and PeerActors) on the DHT
node's in-process actor system.  The actors decide; this module does what they ask (run
announce / lookup queries, dial, close connections, emit events, wake them up) and reports the
outcomes back as messages.  Connections and their bytes never pass through an actor.

Names map from hyperswarm's: ``keyPair`` → ``key_pair``, ``maxPeers`` → ``max_peers``,
``maxParallel`` → ``max_parallel``, ``maxClientConnections`` / ``maxServerConnections`` →
``max_client_connections`` / ``max_server_connections``, ``joinPeer`` / ``leavePeer`` →
``join_peer`` / ``leave_peer``, ``PeerInfo.publicKey`` → ``PeerInfo.public_key``; backoffs and
jitter are in seconds, not milliseconds.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import replace
from types import TracebackType
from typing import Any

from thespian.actors import ActorExitRequest

from actors.auth_actor import BANNED, FIREWALL
from actors.messages import (
    Admission,
    AdmitIncoming,
    BanPeer,
    CloseConnection,
    ConfigureAuth,
    ConnectionEnded,
    ConnectionOpened,
    Dial,
    DialCheck,
    DialResult,
    FlushDone,
    FlushRequest,
    IncomingConnection,
    JoinPeer,
    LeavePeer,
    LeaveTopic,
    PeerBanned,
    PeerView,
    QueryTopic,
    RefreshTopic,
    ResumeSwarm,
    SetBan,
    SetReconnect,
    StartSwarm,
    StopSwarm,
    SuspendSwarm,
    SwarmConfig,
    SwarmStats,
    SwarmStatsRequest,
    SwarmTimer,
    SwarmUpdated,
    SwarmWake,
    TopicQueryDone,
    UnannounceTopic,
    Verdict,
)
from actors.swarm_actor import SwarmActor
from hyperswarm_hugin.connection import Connection
from hyperswarm_hugin.dht import DHT, DHTError
from hyperswarm_hugin.peer_connect import ConnectError, Server, ServerRefused, connect
from protocol.encoding import Address
from protocol.hugin import GroupKey, KeyPair
from protocol.swarm.discovery import ANNOUNCE, LOOKUP_UNANNOUNCE
from protocol.swarm.peer_state import PeerState

log = logging.getLogger(__name__)

EVENTS = ("connection", "update", "ban", "refused")


class SwarmDestroyed(RuntimeError):
    """The swarm was destroyed."""


def _check_32(value: Any, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise ValueError(f"{what} is required and must be 32 bytes")
    return bytes(value)


class PeerInfo:
    """What the swarm knows about one remote peer (hyperswarm's PeerInfo).  Read-only, except
    :meth:`ban` and :meth:`reconnect`."""

    def __init__(self, swarm: Hyperswarm, public_key: bytes) -> None:
        self._swarm = swarm
        self.public_key = public_key
        self._state = PeerState(public_key)

    @property
    def topics(self) -> list[bytes]:
        """The topics this peer was found on."""
        return list(self._state.topics)

    @property
    def prioritized(self) -> bool:
        return self._state.prioritized

    @property
    def banned(self) -> bool:
        return self._state.banned

    @property
    def explicit(self) -> bool:
        return self._state.explicit

    @property
    def attempts(self) -> int:
        return self._state.attempts

    @property
    def client(self) -> bool:
        """True when our connection to this peer is one we dialed."""
        return self._state.client

    @property
    def server(self) -> bool:
        return not self._state.client

    @property
    def relay_addresses(self) -> list[Address]:
        return list(self._state.relay_addresses)

    def ban(self, banned: bool = True) -> None:
        """Never connect to this peer again (``False`` lifts the ban); its handshakes are refused."""
        self._swarm._ban(self.public_key, bool(banned))

    def reconnect(self, reconnecting: bool) -> None:
        """Whether the swarm retries this peer after its connection closes."""
        self._swarm._tell(SetReconnect(self.public_key, bool(reconnecting), self._swarm._now()))

    def __repr__(self) -> str:
        return f"PeerInfo({self.public_key.hex()[:16]}…, attempts={self.attempts}, banned={self.banned})"


class TopicDiscovery:
    """The swarm's discovery of one topic (what ``status(topic)`` returns); sessions share it."""

    def __init__(self, swarm: Hyperswarm, topic: bytes) -> None:
        self.swarm = swarm
        self.topic = topic
        self.sessions: list[PeerDiscovery] = []
        self.task: asyncio.Task[None] | None = None
        self.destroyed = False

    @property
    def is_server(self) -> bool:
        return any(s.is_server for s in self.sessions)

    @property
    def is_client(self) -> bool:
        return any(s.is_client for s in self.sessions)

    def _roles_changed(self) -> None:
        if not self.destroyed:
            self.swarm._tell(RefreshTopic(self.topic, self.is_server, self.is_client, self.swarm._now()))

    async def refresh(self) -> None:
        """Announce / look the topic up again now."""
        if self.destroyed:
            raise SwarmDestroyed("this discovery was destroyed")
        if self.task is not None and not self.task.done():
            await self.flushed()
        self._roles_changed()
        await self.flushed()

    async def flushed(self) -> bool:
        """Wait until the current announce / lookup has completed (and the server is listening)."""
        await self.swarm._listened()
        while self.task is not None and not self.task.done():
            task = self.task
            await asyncio.wait({task})
        return not self.destroyed

    async def destroy(self) -> None:
        await self.swarm.leave(self.topic)


class PeerDiscovery:
    """One ``join`` of a topic (hyperswarm's discovery session)."""

    def __init__(self, discovery: TopicDiscovery, server: bool, client: bool) -> None:
        self.discovery = discovery
        self.is_server = server
        self.is_client = client
        self.destroyed = False

    @property
    def topic(self) -> bytes:
        return self.discovery.topic

    async def flushed(self) -> bool:
        """Wait until this topic has been announced (server) and looked up (client) once."""
        return await self.discovery.flushed()

    async def refresh(self, *, client: bool | None = None, server: bool | None = None) -> None:
        """Change this session's roles (or keep them) and announce / look up again."""
        if self.destroyed:
            raise SwarmDestroyed("this discovery was destroyed")
        client = self.is_client if client is None else bool(client)
        server = self.is_server if server is None else bool(server)
        if not client and not server:
            raise ValueError("a discovery is a client, a server or both")
        self.is_client, self.is_server = client, server
        await self.discovery.refresh()

    async def destroy(self) -> None:
        """End this session; the topic is left (and unannounced) once no session needs it."""
        if self.destroyed:
            return
        self.destroyed = True
        sessions = self.discovery.sessions
        if self in sessions:
            sessions.remove(self)
        if not sessions:
            await self.discovery.swarm.leave(self.topic)
        else:
            self.discovery._roles_changed()
            await self.discovery.flushed()


class Hyperswarm:
    """A swarm: join topics, and get a :class:`Connection` to every peer found on them.

    ``group`` is the Hugin group key: our ``mid`` goes in every handshake and peers without a
    valid one are refused (None: plain hyperswarm, no barrier).  ``bootstrap`` is required
    unless ``dht`` (a started :class:`DHT`, which the swarm then does not own) is given.
    """

    def __init__(self, *, group: GroupKey | None = None, key_pair: KeyPair | None = None,
                 seed: bytes | None = None, bootstrap: list[Address] | list[str] | None = None,
                 dht: DHT | None = None, host: str = "127.0.0.1", port: int = 0,
                 max_peers: int = 64, max_parallel: int = 3, max_client_connections: int = 100,
                 max_server_connections: int = 100, firewall: Callable[[bytes, Any], bool] | None = None,
                 backoffs: Iterable[float] | None = None, jitter: float = 0.5, settle_delay: float = 1.0,
                 rng_seed: int | None = None) -> None:
        if group is not None and not isinstance(group, GroupKey):
            raise TypeError("group must be a GroupKey")
        if key_pair is not None and seed is not None:
            raise ValueError("give key_pair or seed, not both")
        if dht is None and bootstrap is None:
            raise ValueError("bootstrap must be given explicitly (a list of host:port), or a started dht")
        for name, value in (("max_peers", max_peers), ("max_parallel", max_parallel),
                            ("max_client_connections", max_client_connections),
                            ("max_server_connections", max_server_connections)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer")
        if firewall is not None and not callable(firewall):
            raise TypeError("firewall must be callable(remote_public_key, payload) -> bool")
        self.key_pair = key_pair or (KeyPair.from_seed(_check_32(seed, "seed")) if seed is not None
                                     else KeyPair.random())
        self.group = group
        self.max_peers = max_peers
        self._firewall = firewall
        self._config = SwarmConfig(
            public_key=self.key_pair.public_key, max_peers=max_peers, max_parallel=max_parallel,
            max_client_connections=max_client_connections, max_server_connections=max_server_connections,
            backoffs=tuple(backoffs) if backoffs is not None else None, jitter=jitter,
            settle_delay=settle_delay, seed=rng_seed)
        self._owns_dht = dht is None
        # Our own DHT node stays ephemeral (out of other nodes' routing tables), as a hyperdht node
        # does for its first ~20 minutes: a swarm that comes and goes leaves no dead node behind.
        self._dht = dht or DHT(bootstrap=[_address(a) for a in bootstrap or []], host=host, port=port,
                               mode="ephemeral")
        self._actor: Any = None
        self._server: Server | None = None
        self._listening: asyncio.Task[Server] | None = None
        self._topics: dict[bytes, TopicDiscovery] = {}
        self._unannouncing: dict[bytes, asyncio.Task[None]] = {}
        self._dials: dict[int, asyncio.Task[None]] = {}
        self._abandoned: set[int] = set()
        self._conns: dict[int, Connection] = {}
        self._opened: dict[int, Connection] = {}
        self.peers: dict[bytes, PeerInfo] = {}
        self._listeners: dict[str, list[Callable[..., Any]]] = {e: [] for e in EVENTS}
        self._streams: list[asyncio.Queue[tuple[Connection, PeerInfo] | None]] = []
        self._flushes: dict[int, asyncio.Future[bool]] = {}
        self._ids = itertools.count(1)
        self._wake: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._updates = 0
        self.suspended = False
        self.destroyed = False
        self._started = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> Hyperswarm:
        """Start the DHT node (unless given) and the swarm's actors."""
        if self._started:
            return self
        self._started = True
        if self._owns_dht:
            await self._dht.start()
        runtime = self._dht.runtime
        if any(getattr(h, "__func__", None) is Hyperswarm._on_actor_message for h in runtime.message_handlers):
            raise RuntimeError("this DHT already hosts a swarm; give each swarm its own DHT")
        self._loop = runtime.loop
        runtime.message_handlers.append(self._on_actor_message)
        runtime.configure_auth(ConfigureAuth(self.group, self.key_pair, self._firewall))
        self._actor = runtime.system.createActor(SwarmActor)
        self._tell(StartSwarm(self._config, self._now()))
        return self

    async def __aenter__(self) -> Hyperswarm:
        return await self.start()

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.destroy()

    @property
    def dht(self) -> DHT:
        return self._dht

    @property
    def connections(self) -> set[Connection]:
        """The open connections."""
        return set(self._opened.values())

    @property
    def connecting(self) -> int:
        """Dials in progress."""
        return self._stats().connecting

    @property
    def listening(self) -> bool:
        return self._server is not None

    @property
    def stats(self) -> dict[str, Any]:
        """hyperswarm's counters, plus ``actor_restarts`` (actors the supervisor restarted),
        ``topic_queries`` and ``topic_queries_failed`` (announces/lookups that reached no DHT node)."""
        s = self._stats()
        c = s.counters
        return {
            "updates": c.get("updates", 0) + self._updates,
            "connects": {
                "client": {"opened": c.get("client-opened", 0), "closed": c.get("client-closed", 0),
                           "attempted": c.get("client-attempted", 0)},
                "server": {"opened": c.get("server-opened", 0), "closed": c.get("server-closed", 0)},
            },
            "banned_peers": c.get("banned-peers", 0),
            "duplicates": c.get("duplicates", 0),
            "actor_restarts": c.get("child-restarts", 0),
            "topic_queries": c.get("topic-queries", 0),
            "topic_queries_failed": c.get("topic-queries-failed", 0),
            "queued": s.queued,
            "client_connections": s.client_connections,
            "server_connections": s.server_connections,
        }

    def _stats(self) -> SwarmStats:
        self._check_started()
        answer = self._dht.runtime.ask_actor(self._actor, SwarmStatsRequest(0), (SwarmStats,))
        assert isinstance(answer, SwarmStats)
        return answer

    async def destroy(self) -> None:
        """Leave every topic (unannouncing), close every connection, stop listening and, unless
        the DHT was given, close it."""
        if self.destroyed:
            return
        self.destroyed = True
        if not self._started:
            return
        self._tell(StopSwarm(self._now()))
        if self._wake is not None:
            self._wake.cancel()
        for topic in self._topics.values():
            topic.destroyed = True
            if topic.task is not None:
                topic.task.cancel()
        self._topics.clear()
        for task in list(self._dials.values()):
            task.cancel()
        if self._unannouncing:
            await asyncio.gather(*self._unannouncing.values(), return_exceptions=True)
        if self._listening is not None:
            await asyncio.gather(self._listening, return_exceptions=True)
        if self._server is not None:
            await self._server.close()
        for conn in list(self._conns.values()):
            conn.destroy()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for queue in self._streams:
            queue.put_nowait(None)
        for fut in self._flushes.values():
            if not fut.done():
                fut.set_result(False)
        runtime = self._dht.runtime
        if self._on_actor_message in runtime.message_handlers:
            runtime.message_handlers.remove(self._on_actor_message)
        if runtime.system is not None:
            runtime.tell_actor(self._actor, ActorExitRequest())
        if self._owns_dht:
            await self._dht.close()

    close = destroy

    # ------------------------------------------------------------------ events

    def on(self, event: str, listener: Callable[..., Any]) -> None:
        """``connection(conn, peer_info)``, ``update()``, ``ban(peer_info, reason)`` and
        ``refused(remote_public_key or None, reason)``: a handshake we refused (or a server that
        failed our group check)."""
        if event not in self._listeners:
            raise ValueError(f"unknown event {event!r}; events are {', '.join(EVENTS)}")
        self._listeners[event].append(listener)

    def off(self, event: str, listener: Callable[..., Any]) -> None:
        if listener in self._listeners.get(event, []):
            self._listeners[event].remove(listener)

    def _emit(self, event: str, *args: Any) -> None:
        for listener in list(self._listeners[event]):
            try:
                listener(*args)
            except Exception:
                log.exception("a %r listener failed", event)

    async def connections_stream(self) -> AsyncIterator[tuple[Connection, PeerInfo]]:
        """``async for conn, info in swarm.connections_stream()``: each new connection, until destroy."""
        queue: asyncio.Queue[tuple[Connection, PeerInfo] | None] = asyncio.Queue()
        self._streams.append(queue)
        try:
            while (item := await queue.get()) is not None:
                yield item
        finally:
            self._streams.remove(queue)

    # ------------------------------------------------------------------ the API

    def join(self, topic: bytes, *, server: bool = True, client: bool = True) -> PeerDiscovery:
        """Announce on (server) and / or look up (client) ``topic``, and connect to the peers found."""
        topic = _check_32(topic, "topic")
        self._check_started()
        if not server and not client:
            raise ValueError("join as a client, a server or both")
        discovery = self._topics.get(topic)
        if discovery is None:
            discovery = self._topics[topic] = TopicDiscovery(self, topic)
        session = PeerDiscovery(discovery, bool(server), bool(client))
        discovery.sessions.append(session)
        discovery._roles_changed()
        return session

    async def leave(self, topic: bytes) -> None:
        """Stop announcing and looking up ``topic`` (its record is taken back from the DHT)."""
        topic = _check_32(topic, "topic")
        discovery = self._topics.pop(topic, None)
        if discovery is None or self.destroyed:
            return
        discovery.destroyed = True
        for session in discovery.sessions:
            session.destroyed = True
        self._tell(LeaveTopic(topic, self._now()))
        if discovery.task is not None:
            discovery.task.cancel()
        pending = self._unannouncing.get(topic)
        if pending is not None:
            await asyncio.gather(pending, return_exceptions=True)

    def status(self, topic: bytes) -> TopicDiscovery | None:
        """The discovery of ``topic``, or None if it is not joined."""
        return self._topics.get(_check_32(topic, "topic"))

    def topics(self) -> list[TopicDiscovery]:
        return list(self._topics.values())

    def join_peer(self, public_key: bytes) -> None:
        """Keep a connection to this peer, whatever the topics (retried up to 5 times in a row)."""
        self._check_started()
        self._tell(JoinPeer(_check_32(public_key, "a public key"), self._now()))

    def leave_peer(self, public_key: bytes) -> None:
        """Stop keeping the connection :meth:`join_peer` asked for (an open one stays open)."""
        self._check_started()
        self._tell(LeavePeer(_check_32(public_key, "a public key"), self._now()))

    async def listen(self) -> None:
        """Accept connections on our key pair (join does this for server topics)."""
        self._check_started()
        if self._listening is None:
            self._listening = self._loop.create_task(self._listen())
        await asyncio.shield(self._listening)

    async def flush(self) -> bool:
        """Wait until every topic was announced / looked up and the peers found were tried."""
        self._check_started()
        await asyncio.gather(*(t.flushed() for t in list(self._topics.values())))
        if self.destroyed:
            return False
        rid = next(self._ids)
        fut: asyncio.Future[bool] = self._loop.create_future()
        self._flushes[rid] = fut
        self._tell(FlushRequest(rid, self._now()))
        try:
            return await fut
        finally:
            self._flushes.pop(rid, None)

    async def suspend(self) -> None:
        """Close every connection and stop discovery and accepting until :meth:`resume`."""
        self._check_started()
        if self.suspended:
            return
        self.suspended = True
        self._tell(SuspendSwarm(self._now()))
        for topic in self._topics.values():
            if topic.task is not None:
                topic.task.cancel()
        waits = [c.wait_closed() for c in self._conns.values()]
        if waits:
            await asyncio.gather(*waits, return_exceptions=True)

    async def resume(self) -> None:
        """Announce and look up every joined topic again, and reconnect."""
        self._check_started()
        if not self.suspended:
            return
        self.suspended = False
        self._tell(ResumeSwarm(self._now()))

    # ------------------------------------------------------------------ host plumbing

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
        server = Server(self._dht.runtime, self.key_pair, group=self.group, firewall=self._firewall,
                        on_connection=self._on_server_connection, admit=self._admit,
                        on_refused=self._on_refused)
        self._server = server
        await server.listen()
        return server

    def ban(self, public_key: bytes, banned: bool = True) -> None:
        """Ban a key, known as a peer yet or not (``PeerInfo.ban`` for one that is): from now on we
        never dial it and refuse its handshakes, until ``False`` lifts the ban (a connection open
        now is not closed: close it yourself).  Explicit bans are kept however many there are;
        bans by the ``firewall`` are bounded (the AuthActor remembers the last 4096 keys it
        refused, the swarm keeps a ``PeerInfo`` for the last 1024) and the firewall is asked
        again about a key that was forgotten."""
        self._check_started()
        self._ban(_check_32(public_key, "a public key"), bool(banned))

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
            if msg.kind == ANNOUNCE:
                await self.listen()
                assert self._server is not None
                records = await self._dht.announce_and_lookup(msg.topic, self.key_pair,
                                                              self._server.relay_addresses)
            elif msg.kind == LOOKUP_UNANNOUNCE:
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
            conn = await connect(self._dht.runtime, self.key_pair, msg.public_key, group=self.group,
                                 relay_addresses=list(msg.relay_addresses) or None)
        except Exception as exc:  # every failure is reported, or the swarm's slot would leak
            self._dials.pop(msg.conn_id, None)
            self._abandoned.discard(msg.conn_id)
            level = logging.INFO if isinstance(exc, ConnectError | RuntimeError | OSError) else logging.WARNING
            log.log(level, "connecting to %s failed: %r", msg.public_key.hex()[:16], exc)
            if isinstance(exc, ServerRefused):
                self._emit("refused", msg.public_key, "server-mid")
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


_HANDLERS: dict[type, Callable[[Hyperswarm, Any], None]] = {
    QueryTopic: Hyperswarm._on_query,
    UnannounceTopic: Hyperswarm._on_unannounce,
    Dial: Hyperswarm._on_dial,
    CloseConnection: Hyperswarm._on_close,
    ConnectionOpened: Hyperswarm._on_opened,
    PeerView: Hyperswarm._on_peer_view,
    PeerBanned: Hyperswarm._on_banned,
    SwarmUpdated: Hyperswarm._on_update,
    SwarmWake: Hyperswarm._on_wake,
    FlushDone: Hyperswarm._on_flush_done,
}


def _address(value: Any) -> Address:
    if isinstance(value, tuple) and len(value) == 2:
        return (str(value[0]), int(value[1]))
    if isinstance(value, str) and ":" in value:
        host, _, port = value.rpartition(":")
        if port.isdigit():
            return (host, int(port))
    raise ValueError(f"a bootstrap node is 'host:port' or (host, port), got {value!r}")
