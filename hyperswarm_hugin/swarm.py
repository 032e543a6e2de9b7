"""Hyperswarm: find and connect peers by topic, in asyncio, with Hugin's group barrier.

``Hyperswarm`` is the host of a SwarmActor (with its TopicActors and PeerActors) on the DHT
node's in-process actor system.  The actors decide; the host plumbing (swarm_host.py) does what
they ask (run announce / lookup queries, dial, close connections, emit events, wake them up) and
reports the outcomes back as messages.  Connections and their bytes never pass through an actor.
This module is the API; PeerInfo lives in peer_info.py, the discovery sessions in discovery.py.

Names map from hyperswarm's: ``keyPair`` → ``key_pair``, ``maxPeers`` → ``max_peers``,
``maxParallel`` → ``max_parallel``, ``maxClientConnections`` / ``maxServerConnections`` →
``max_client_connections`` / ``max_server_connections``, ``joinPeer`` / ``leavePeer`` →
``join_peer`` / ``leave_peer``, ``PeerInfo.publicKey`` → ``PeerInfo.public_key``; backoffs and
jitter are in seconds, not milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from types import TracebackType
from typing import Any

from thespian.actors import ActorExitRequest

from hyperswarm_hugin import arguments as check
from hyperswarm_hugin.actors.messages import (
    ConfigureAuth,
    FlushRequest,
    JoinPeer,
    LeavePeer,
    LeaveTopic,
    ResumeSwarm,
    StartSwarm,
    StopSwarm,
    SuspendSwarm,
    SwarmConfig,
    SwarmStats,
    SwarmStatsRequest,
)
from hyperswarm_hugin.actors.swarm_actor import SwarmActor
from hyperswarm_hugin.connection import Connection
from hyperswarm_hugin.dht import DHT
from hyperswarm_hugin.discovery import PeerDiscovery, TopicDiscovery
from hyperswarm_hugin.peer_connect import ServerStats
from hyperswarm_hugin.peer_info import PeerInfo
from hyperswarm_hugin.protocol.encoding import Address
from hyperswarm_hugin.protocol.hugin import GroupKey, KeyPair
from hyperswarm_hugin.swarm_host import EVENTS, SwarmDestroyed, SwarmHost, SwarmRelayThrough, swarm_relay_function

__all__ = ["Hyperswarm", "PeerDiscovery", "PeerInfo", "SwarmDestroyed", "TopicDiscovery"]

log = logging.getLogger(__name__)

UNANNOUNCE_GRACE = 1.0
"""destroy() waits this many seconds at most for our topic records to be taken back."""


class Hyperswarm(SwarmHost):
    """A swarm: join topics, and get a :class:`Connection` to every peer found on them.

    ``group`` is the Hugin group key: our ``mid`` goes in every handshake and peers without a
    valid one are refused (None: plain hyperswarm, no barrier).  ``bootstrap`` is required
    unless ``dht`` (a started :class:`DHT`, which the swarm then does not own) is given.
    ``relay_through`` is a blind relay's public key (or a list of them) used when our NAT is
    random or when punching to a peer failed (HOLEPUNCH_ABORTED and the like, hyperswarm's
    rule), or a function ``(force, swarm) -> key or None`` that decides itself.
    """

    def __init__(self, *, group: GroupKey | None = None, key_pair: KeyPair | None = None,
                 seed: bytes | None = None, bootstrap: list[Address] | list[str] | None = None,
                 dht: DHT | None = None, host: str = "127.0.0.1", port: int = 0,
                 max_peers: int = 64, max_parallel: int = 3, max_client_connections: int = 100,
                 max_server_connections: int = 100, firewall: Callable[[bytes, Any], bool] | None = None,
                 backoffs: Iterable[float] | None = None, jitter: float = 0.5, settle_delay: float = 1.0,
                 rng_seed: int | None = None, relay_through: SwarmRelayThrough = None) -> None:
        check.group(group)
        if key_pair is not None and seed is not None:
            raise ValueError("give key_pair or seed, not both")
        if key_pair is not None:
            check.key_pair(key_pair)
        if dht is None and bootstrap is None:
            raise ValueError("bootstrap must be given explicitly (a list of host:port), or a started dht")
        if dht is not None and not isinstance(dht, DHT):
            raise TypeError(f"dht must be a DHT, got {type(dht).__name__}")
        bootstrap_nodes = check.addresses(bootstrap, "bootstrap", "a bootstrap node") or []
        check.host(host)
        check.port(port)
        for name, value in (("max_peers", max_peers), ("max_parallel", max_parallel),
                            ("max_client_connections", max_client_connections),
                            ("max_server_connections", max_server_connections)):
            check.non_negative_int(value, name)
        check.callback(firewall, "firewall", "(remote_public_key, payload) -> bool")
        if backoffs is not None:
            backoffs = [check.seconds(b, f"backoffs[{i}]") for i, b in enumerate(backoffs)]
            if len(backoffs) != 4:
                raise ValueError("backoffs are four durations in seconds (short, medium, long, very long)")
        check.seconds(jitter, "jitter")
        check.seconds(settle_delay, "settle_delay")
        if rng_seed is not None:
            check.non_negative_int(rng_seed, "rng_seed")
        self._relay_through = swarm_relay_function(relay_through)
        self.key_pair = key_pair or (KeyPair.from_seed(check.bytes32(seed, "seed")) if seed is not None
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
        self._dht = dht or DHT(bootstrap=bootstrap_nodes, host=host, port=port,
                               mode="ephemeral")
        self._topics: dict[bytes, TopicDiscovery] = {}
        self.suspended = False
        self.destroyed = False
        super().__init__()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> Hyperswarm:
        """Start the DHT node (unless given) and the swarm's actors."""
        if self._started:
            return self
        self._started = True
        if self._owns_dht:
            await self._dht.start()
        runtime = self._dht.runtime
        if any(getattr(h, "__func__", None) is SwarmHost._on_actor_message for h in runtime.message_handlers):
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
        ``topic_queries`` and ``topic_queries_failed`` (announces/lookups that reached no DHT node),
        ``connect_failures`` (our dials that failed, by reason) and ``bytes_in`` / ``bytes_out``
        (encrypted bytes of every connection, open or closed)."""
        s = self._stats()
        c = s.counters
        live = list(self._conns.values())
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
            "connect_failures": {k.partition(":")[2]: v for k, v in c.items() if k.startswith("client-failed:")},
            "bytes_in": self._closed_bytes[0] + sum(conn.raw_bytes_read for conn in live),
            "bytes_out": self._closed_bytes[1] + sum(conn.raw_bytes_written for conn in live),
        }

    @property
    def server_stats(self) -> ServerStats | None:
        """The handshakes our server answered (accepted, refused by reason, holepunched, relayed),
        or None before the swarm listens."""
        return self._server.stats if self._server is not None else None

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
        # Taking our records back from the DHT is a courtesy (they expire on their own): with the
        # DHT unreachable it would wait out every query's retries, so it gets UNANNOUNCE_GRACE.
        deadline = self._loop.time() + UNANNOUNCE_GRACE
        late = await _within([self._listening] if self._listening is not None else [], deadline)
        closing = [self._loop.create_task(self._server.close())] if self._server is not None else []
        late += await _within([*self._unannouncing.values(), *closing], deadline)
        if late:
            log.info("gave up taking %d record(s) back from the DHT after %.1f s", late, UNANNOUNCE_GRACE)
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
        """``connection(conn, peer_info)``, ``update()``, ``ban(peer_info, reason)``,
        ``refused(remote_public_key or None, reason)``: a handshake we refused (or a server that
        failed our group check), and ``connect_error(remote_public_key, error)``: a connect of
        ours that failed (a :class:`ConnectError` with hyperdht's ``code``; the swarm retries)."""
        if event not in self._listeners:
            raise ValueError(f"unknown event {event!r}; events are {', '.join(EVENTS)}")
        check.callback(listener, "listener", "(*event_args)", optional=False)
        self._listeners[event].append(listener)

    def off(self, event: str, listener: Callable[..., Any]) -> None:
        if listener in self._listeners.get(event, []):
            self._listeners[event].remove(listener)

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
        topic = check.bytes32(topic, "topic")
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
        topic = check.bytes32(topic, "topic")
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
        return self._topics.get(check.bytes32(topic, "topic"))

    def topics(self) -> list[TopicDiscovery]:
        return list(self._topics.values())

    def join_peer(self, public_key: bytes) -> None:
        """Keep a connection to this peer, whatever the topics (retried up to 5 times in a row)."""
        self._check_started()
        self._tell(JoinPeer(check.public_key(public_key, "public_key"), self._now()))

    def leave_peer(self, public_key: bytes) -> None:
        """Stop keeping the connection :meth:`join_peer` asked for (an open one stays open)."""
        self._check_started()
        self._tell(LeavePeer(check.bytes32(public_key, "public_key"), self._now()))

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

    def ban(self, public_key: bytes, banned: bool = True) -> None:
        """Ban a key, known as a peer yet or not (``PeerInfo.ban`` for one that is): from now on we
        never dial it and refuse its handshakes, until ``False`` lifts the ban (a connection open
        now is not closed: close it yourself).  Explicit bans are kept however many there are;
        bans by the ``firewall`` are bounded (the AuthActor remembers the last 4096 keys it
        refused, the swarm keeps a ``PeerInfo`` for the last 1024) and the firewall is asked
        again about a key that was forgotten."""
        self._check_started()
        self._ban(check.bytes32(public_key, "public_key"), bool(banned))


async def _within(tasks: list[asyncio.Task[Any]], deadline: float) -> int:
    """Wait for ``tasks`` until the loop time ``deadline``, cancel the late ones; how many were late."""
    if not tasks:
        return 0
    _, late = await asyncio.wait(tasks, timeout=max(0.0, deadline - asyncio.get_running_loop().time()))
    for task in late:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return len(late)
