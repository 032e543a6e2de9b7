"""SwarmActor: the supervisor of a swarm's TopicActors and PeerActors.

It owns what hyperswarm's ``Hyperswarm`` object owns: the connection table (one live connection
per remote key), the connection limits, the dial queue, the retry timers, the duplicate rule,
flush accounting and the ``update`` events.  Peers and topics are its children; it keeps the last
state each reported and, when one fails on a message, replaces it with a fresh actor started
from that state and hands it the message once more.

Everything it wants done in the world (queries, dials, closing connections, events, its next
wake-up) goes to the host, the actor that started it, as a message.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from thespian.actors import Actor, ActorAddress, ActorExitRequest, ChildActorExited, PoisonMessage

from hyperswarm_hugin.actors.messages import (
    Admission,
    AdmitIncoming,
    BanPeer,
    CloseConnection,
    ConnectionEnded,
    ConnectionOpened,
    Dial,
    DialResult,
    FlushDone,
    FlushRequest,
    IncomingConnection,
    JoinPeer,
    LeavePeer,
    LeaveTopic,
    PeerAction,
    PeerBanned,
    PeerChanged,
    PeerConnected,
    PeerDial,
    PeerDisconnected,
    PeerExplicit,
    PeerFound,
    PeerRetryDue,
    PeerSetBan,
    PeerSetReconnect,
    PeerView,
    RefreshTopic,
    RestoreState,
    ResumeSwarm,
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
    TopicChanged,
    TopicEvent,
    TopicInput,
    TopicQueryDone,
    UnannounceTopic,
)
from hyperswarm_hugin.actors.peer_actor import PeerActor
from hyperswarm_hugin.actors.topic_actor import TopicActor
from hyperswarm_hugin.protocol.swarm.discovery import TopicState
from hyperswarm_hugin.protocol.swarm.peer_state import PeerState
from hyperswarm_hugin.protocol.swarm.retry import RetryTimers

log = logging.getLogger(__name__)

DUPLICATE = "duplicate"
MAX_FIREWALL_BANNED_PEERS = 1024
"""Keys banned by the user's firewall that keep a PeerActor (and a ``PeerInfo``); past this the
least recently banned is forgotten.  Explicit bans (``ban()``) are kept until lifted."""


@dataclass(slots=True)
class ConnectionRecord:
    public_key: bytes
    client: bool
    opened: bool
    queued: bool = False


@dataclass(slots=True)
class PendingFlush:
    request_id: int
    missing: int
    tick: int


@dataclass(slots=True)
class Child:
    """A live child actor and what it is (a peer's key or a topic)."""

    address: ActorAddress
    kind: str
    key: bytes
    redelivered: bool = False


class SwarmActor(Actor):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.host: ActorAddress | None = None
        self.config = SwarmConfig(public_key=b"")
        self.rng = random.Random()
        self.retry = RetryTimers(self.rng)
        self.now = 0.0
        self.children: dict[str, Child] = {}  # by str(address): addresses are not hashable
        self.peers: dict[bytes, ActorAddress] = {}
        self.peer_states: dict[bytes, PeerState] = {}
        self.topics: dict[bytes, ActorAddress] = {}
        self.topic_states: dict[bytes, TopicState] = {}
        self.live: dict[int, ConnectionRecord] = {}
        self.by_key: dict[bytes, int] = {}
        self.ids = itertools.count(1)
        self.queue: dict[int, list[bytes]] = {}
        self.flush_ticks: dict[bytes, int] = {}
        self.flush_tick = 0
        self.pending_flushes: list[PendingFlush] = []
        self.connecting = 0
        self.client_connections = 0
        self.server_connections = 0
        self.counters: Counter[str] = Counter()
        self.suspended = False
        self.stopped = False
        self.draining = False
        self.disconnecting: set[bytes] = set()
        self.firewall_bans: OrderedDict[bytes, None] = OrderedDict()  # least recent first
        self.wake_at: float | None = None

    # ------------------------------------------------------------------ dispatch

    def receiveMessage(self, msg: Any, sender: ActorAddress) -> None:
        if hasattr(msg, "now"):
            self.now = msg.now
        if isinstance(msg, PeerChanged):
            self._peer_changed(sender, msg)
        elif isinstance(msg, TopicChanged):
            self._topic_changed(sender, msg)
        elif isinstance(msg, PoisonMessage):
            self._child_failed(sender, msg.poisonMessage)
        elif isinstance(msg, ChildActorExited):
            self._child_exited(msg.childAddress)
        elif isinstance(msg, StartSwarm):
            self._start(msg, sender)
        else:
            handler = HANDLERS.get(type(msg))
            if handler is None or self.host is None:
                return
            handler(self, msg)
        self._rearm()

    def _tell_host(self, msg: Any) -> None:
        assert self.host is not None
        self.send(self.host, msg)

    def _start(self, msg: StartSwarm, sender: ActorAddress) -> None:
        self.host = sender
        self.config = msg.config
        self.rng = random.Random(msg.config.seed)
        self.retry = RetryTimers(self.rng, msg.config.backoffs, msg.config.jitter)

    # ------------------------------------------------------------------ children

    def _spawn_peer(self, public_key: bytes, state: PeerState) -> ActorAddress:
        address = self.createActor(PeerActor)
        self.children[str(address)] = Child(address, "peer", public_key)
        self.peers[public_key] = address
        self.peer_states[public_key] = state
        self.send(address, RestoreState(state))
        return address

    def _peer(self, public_key: bytes) -> ActorAddress | None:
        """The key's PeerActor, created if new; None for our own key."""
        if public_key == self.config.public_key:
            return None
        address = self.peers.get(public_key)
        if address is None:
            address = self._spawn_peer(public_key, PeerState(public_key))
        return address

    def _spawn_topic(self, topic: bytes, state: TopicState) -> ActorAddress:
        address = self.createActor(TopicActor)
        self.children[str(address)] = Child(address, "topic", topic)
        self.topics[topic] = address
        self.topic_states[topic] = state
        self.send(address, RestoreState((state, self.config.settle_delay, self.rng.randrange(2**63))))
        return address

    def _retire(self, address: ActorAddress) -> None:
        self.children.pop(str(address), None)
        self.send(address, ActorExitRequest())

    def _child_failed(self, address: ActorAddress, message: Any) -> None:
        child = self.children.get(str(address))
        if child is None:
            return
        self.counters["child-restarts"] += 1
        log.warning("a %s actor failed on %s; restarting it from its last state", child.kind,
                    type(message).__name__)
        redelivered = child.redelivered
        replacement = self._restart(address, child)
        if not redelivered:
            self.children[str(replacement)].redelivered = True
            self.send(replacement, message)
        else:
            self.counters["messages-dropped"] += 1
            if isinstance(message, PeerDial) and message.reserved:
                self._dial_skipped(message.conn_id, message.queued)

    def _child_exited(self, address: ActorAddress) -> None:
        child = self.children.get(str(address))
        if child is not None:  # not one we retired: bring it back
            self.counters["child-restarts"] += 1
            self._restart(address, child)

    def _restart(self, address: ActorAddress, child: Child) -> ActorAddress:
        self._retire(address)
        if child.kind == "peer":
            return self._spawn_peer(child.key, self.peer_states[child.key])
        return self._spawn_topic(child.key, self.topic_states[child.key])

    # ------------------------------------------------------------------ topics

    def on_refresh_topic(self, msg: RefreshTopic) -> None:
        if self.stopped:
            return
        address = self.topics.get(msg.topic)
        if address is None:
            address = self._spawn_topic(msg.topic, TopicState(msg.topic, suspended=self.suspended))
        self.send(address, TopicInput(TopicEvent.REFRESH, msg.now, server=msg.server, client=msg.client))

    def on_leave_topic(self, msg: LeaveTopic) -> None:
        address = self.topics.pop(msg.topic, None)
        if address is not None:
            self.send(address, TopicInput(TopicEvent.LEAVE, msg.now))

    def on_topic_query_done(self, msg: TopicQueryDone) -> None:
        address = self.topics.get(msg.topic)
        state = self.topic_states.get(msg.topic)
        if address is None or state is None:
            return
        if not msg.ok:
            self.counters["topic-queries-failed"] += 1
        self.send(address, TopicInput(TopicEvent.DONE, msg.now, clock=msg.clock, ok=msg.ok))
        if msg.clock != state.clock or not state.is_client or self.suspended or self.stopped:
            return
        for public_key, relay_addresses in msg.peers:
            peer = self._peer(public_key)
            if peer is not None:
                self.send(peer, PeerFound(msg.topic, relay_addresses, public_key in self.by_key, msg.now))

    def _topic_changed(self, sender: ActorAddress, msg: TopicChanged) -> None:
        child = self.children.get(str(sender))
        if child is None:
            return
        state: TopicState = msg.state
        self.topic_states[state.topic] = state
        child.redelivered = False
        if msg.query is not None and not self.stopped:
            self.counters["topic-queries"] += 1
            self._tell_host(msg.query)
        if msg.unannounce:
            self._tell_host(UnannounceTopic(state.topic))
        if state.left:
            self.topic_states.pop(state.topic, None)
            self._retire(sender)

    # ------------------------------------------------------------------ peers

    def _peer_changed(self, sender: ActorAddress, msg: PeerChanged) -> None:
        child = self.children.get(str(sender))
        if child is None:
            return
        child.redelivered = False
        state: PeerState = msg.state
        key = state.public_key
        self.peer_states[key] = state
        self.disconnecting.discard(key)
        if msg.action is PeerAction.ENQUEUE:
            self.flush_ticks[key] = self.flush_tick
            self.queue.setdefault(state.priority, []).append(key)
        elif msg.action is PeerAction.DIAL:
            self._dial(msg.conn_id, state)
        elif msg.action is PeerAction.SKIP:
            self._dial_skipped(msg.conn_id, msg.queued)
        elif msg.action is PeerAction.DEQUEUED and msg.queued:
            self._flush_maybe(key)
        elif msg.action is PeerAction.WAIT and msg.backoff is not None:
            self.retry.add(key, msg.backoff, self.now)
        self._tell_host(PeerView(key, state))
        self._collect_maybe(key)
        self._attempt_client_connections()

    def _collect_maybe(self, key: bytes) -> None:
        state = self.peer_states.get(key)
        if state is None or not state.collectable or key in self.by_key:
            return
        address = self.peers.pop(key)
        self.peer_states.pop(key)
        self.flush_ticks.pop(key, None)
        self._retire(address)
        self._tell_host(PeerView(key, None))

    def on_join_peer(self, msg: JoinPeer) -> None:
        peer = self._peer(msg.public_key)
        if peer is not None:
            self.send(peer, PeerExplicit(True, msg.public_key in self.by_key, msg.now))

    def on_leave_peer(self, msg: LeavePeer) -> None:
        peer = self.peers.get(msg.public_key)
        if peer is not None:
            self.send(peer, PeerExplicit(False, msg.public_key in self.by_key, msg.now))

    def on_ban_peer(self, msg: BanPeer) -> None:
        key = msg.public_key
        peer = self._peer(key) if msg.banned else self.peers.get(key)
        if peer is None:
            return
        self.send(peer, PeerSetBan(msg.banned, msg.now))
        self.firewall_bans.pop(key, None)  # an explicit ban (or lifting one) is kept until changed
        if msg.by_firewall:
            self.counters["banned-peers"] += 1
            self._tell_host(PeerBanned(key, "firewall"))
            self.firewall_bans[key] = None
            if len(self.firewall_bans) > MAX_FIREWALL_BANNED_PEERS:
                self._forget_banned(next(iter(self.firewall_bans)))

    def _forget_banned(self, key: bytes) -> None:
        """Drop the least recent firewall-banned peer's actor (the AuthActor still refuses it while
        it is in its own bounded list, and the firewall would refuse it again anyway)."""
        del self.firewall_bans[key]
        state = self.peer_states.get(key)
        if state is None or state.explicit or key in self.by_key:
            return
        self.counters["banned-peers-forgotten"] += 1
        address = self.peers.pop(key)
        self.peer_states.pop(key)
        self.flush_ticks.pop(key, None)
        self._retire(address)
        self._tell_host(PeerView(key, None))

    def on_set_reconnect(self, msg: SetReconnect) -> None:
        peer = self.peers.get(msg.public_key)
        if peer is not None:
            self.send(peer, PeerSetReconnect(msg.reconnecting, msg.now))

    def _should_requeue(self, key: bytes) -> bool:
        state = self.peer_states.get(key)
        if self.suspended or self.stopped or state is None:
            return False
        return state.explicit or any(topic in self.topics for topic in state.topics)

    # ------------------------------------------------------------------ dialing

    def _should_connect(self) -> bool:
        c = self.config
        return (not self.stopped and not self.suspended and self.connecting < c.max_parallel
                and len(self.by_key) < c.max_peers and self.client_connections < c.max_client_connections)

    def _pop_queue(self) -> bytes | None:
        for priority in sorted(self.queue, reverse=True):
            bucket = self.queue[priority]
            if bucket:
                index = self.rng.randrange(len(bucket))
                bucket[index], bucket[-1] = bucket[-1], bucket[index]
                return bucket.pop()
        return None

    @property
    def queued(self) -> int:
        return sum(len(b) for b in self.queue.values())

    def _attempt_client_connections(self) -> None:
        if self.draining or self.suspended or self.stopped:
            return
        self.draining = True
        try:
            for key, state in list(self.peer_states.items()):
                if self.connecting >= self.config.max_parallel:
                    break
                if state.explicit and key not in self.disconnecting and state.explicit_retry_allowed(self.now):
                    self._start_dial(key, queued=False)
            while self._should_connect() and (popped := self._pop_queue()) is not None:
                self._start_dial(popped, queued=True)
        finally:
            self.draining = False
        if self.connecting == 0:
            self._flush_all_maybe()

    def _start_dial(self, key: bytes, queued: bool) -> None:
        peer = self.peers.get(key)
        if peer is None:
            return
        state = self.peer_states[key]
        if key in self.by_key or state.banned:
            if queued:
                self.send(peer, PeerDial(True, self.now, reserved=False))
            return
        conn_id = next(self.ids)
        self.live[conn_id] = ConnectionRecord(key, client=True, opened=False, queued=queued)
        self.by_key[key] = conn_id
        self.connecting += 1
        self.client_connections += 1
        self.send(peer, PeerDial(queued, self.now, conn_id=conn_id))

    def _dial(self, conn_id: int, state: PeerState) -> None:
        record = self.live.get(conn_id)
        if record is None:
            return
        if self.by_key.get(record.public_key) != conn_id:  # replaced before it started
            self._ended(conn_id, self.now)
            return
        self.counters["client-attempted"] += 1
        self._tell_host(Dial(conn_id, record.public_key, state.relay_addresses))
        self._tell_host(SwarmUpdated())

    def _release(self, conn_id: int) -> ConnectionRecord | None:
        """Undo a dial's reservation (it never counted as an attempt)."""
        record = self.live.pop(conn_id, None)
        if record is None:
            return None
        if self.by_key.get(record.public_key) == conn_id:
            del self.by_key[record.public_key]
        self.connecting -= 1
        self.client_connections -= 1
        return record

    def _dial_skipped(self, conn_id: int, queued: bool) -> None:
        record = self._release(conn_id)
        if record is not None and queued:
            self._flush_maybe(record.public_key)

    def on_dial_result(self, msg: DialResult) -> None:
        record = self.live.get(msg.conn_id)
        if record is None or not record.client or record.opened:
            return
        key = record.public_key
        if msg.refused:  # our own firewall said no: no attempt counted, the peer is banned
            self._release(msg.conn_id)
            if record.queued:
                self._flush_maybe(key)
            self.on_ban_peer(BanPeer(key, True, msg.now, by_firewall=True))
            self._attempt_client_connections()
            return
        if not msg.opened:
            self.counters[f"client-failed:{msg.error or 'unknown'}"] += 1
            self._ended(msg.conn_id, msg.now)
            return
        record.opened = True
        self.counters["client-opened"] += 1
        self._connect_done()
        peer = self.peers.get(key)
        if peer is not None:
            self.send(peer, PeerConnected(True, msg.now))
        self._tell_host(ConnectionOpened(msg.conn_id, key, True))
        if record.queued:
            self._flush_maybe(key)
        self._tell_host(SwarmUpdated())

    def _connect_done(self) -> None:
        self.connecting -= 1
        if self.connecting < self.config.max_parallel:
            self._attempt_client_connections()
        if self.connecting == 0:
            self._flush_all_maybe()

    # ------------------------------------------------------------------ server side

    def on_admit_incoming(self, msg: AdmitIncoming) -> None:
        c = self.config
        reason = None
        if self.stopped or self.suspended:
            reason = "suspended"
        elif self.server_connections >= c.max_server_connections:
            reason = "max-server-connections"
        elif len(self.by_key) >= c.max_peers and msg.public_key not in self.by_key:
            reason = "max-peers"
        self._tell_host(Admission(msg.request_id, reason is None, reason))

    def on_incoming_connection(self, msg: IncomingConnection) -> None:
        key = msg.public_key
        if self.stopped or self.suspended:
            self._tell_host(CloseConnection(msg.conn_id, "destroyed"))
            return
        existing = self.by_key.get(key)
        if existing is not None:
            # The survivor of two connections between the same peers: the new one if the old one has
            # moved bytes both ways (the other side lost it), else the one the larger key initiated.
            expected_initiator = self.config.public_key > key
            keep_new = msg.existing_established or expected_initiator is False
            if not keep_new:
                self.counters["duplicates"] += 1
                self._tell_host(CloseConnection(msg.conn_id, DUPLICATE))
                return
            self.counters["duplicates"] += 1
            del self.by_key[key]
            self._tell_host(CloseConnection(existing, DUPLICATE))
        self.counters["server-opened"] += 1
        self.live[msg.conn_id] = ConnectionRecord(key, client=False, opened=True)
        self.by_key[key] = msg.conn_id
        self.server_connections += 1
        peer = self._peer(key)
        if peer is not None:
            self.send(peer, PeerConnected(False, msg.now))
        self._tell_host(ConnectionOpened(msg.conn_id, key, False))
        self._tell_host(SwarmUpdated())

    # ------------------------------------------------------------------ closing

    def on_connection_ended(self, msg: ConnectionEnded) -> None:
        self._ended(msg.conn_id, msg.now)

    def _ended(self, conn_id: int, now: float) -> None:
        record = self.live.pop(conn_id, None)
        if record is None:
            return
        key = record.public_key
        if self.by_key.get(key) == conn_id:
            del self.by_key[key]
        peer = self.peers.get(key)
        if record.client:
            if peer is not None:
                self.disconnecting.add(key)  # its snapshot is stale until it answers PeerDisconnected
            if not record.opened:
                self._connect_done()
            self.counters["client-closed"] += 1
            self.client_connections -= 1
            if peer is not None:
                self.send(peer, PeerDisconnected(self._should_requeue(key), now))
            if not record.opened and record.queued:
                self._flush_maybe(key)
        else:
            self.server_connections -= 1
            self.counters["server-closed"] += 1
            self._collect_maybe(key)
        self._attempt_client_connections()
        self._tell_host(SwarmUpdated())

    # ------------------------------------------------------------------ flush

    def _flush_maybe(self, key: bytes) -> None:
        tick = self.flush_ticks.get(key, 0)
        for flush in list(self.pending_flushes):
            if tick > flush.tick:
                continue
            flush.missing -= 1
            if flush.missing > 0:
                continue
            self.pending_flushes.remove(flush)
            self._tell_host(FlushDone(flush.request_id, True))

    def _flush_all_maybe(self) -> bool:
        c = self.config
        if self.connecting > 0 or (len(self.by_key) < c.max_peers
                                   and self.client_connections < c.max_client_connections):
            return False
        while self.pending_flushes:
            self._tell_host(FlushDone(self.pending_flushes.pop().request_id, True))
        return True

    def on_flush(self, msg: FlushRequest) -> None:
        if self._flush_all_maybe():
            self._tell_host(FlushDone(msg.request_id, True))
            return
        pending = sum(1 for r in self.live.values() if not r.opened and self.by_key.get(r.public_key) is not None)
        if not self.queued and not pending:
            self._tell_host(FlushDone(msg.request_id, True))
            return
        self.pending_flushes.append(PendingFlush(msg.request_id, self.queued + pending, self.flush_tick))
        self.flush_tick += 1

    # ------------------------------------------------------------------ time, suspend, stop

    def on_timer(self, msg: SwarmTimer) -> None:
        self.wake_at = None  # the host's timer is spent: always tell it the next one
        for key in self.retry.due(msg.now):
            assert isinstance(key, bytes)
            peer = self.peers.get(key)
            if peer is not None and not self.suspended:
                self.send(peer, PeerRetryDue(key in self.by_key, msg.now))
        for topic, state in list(self.topic_states.items()):
            address = self.topics.get(topic)
            if address is not None and state.wake_at is not None and state.wake_at <= msg.now:
                self.send(address, TopicInput(TopicEvent.TICK, msg.now))

    def _rearm(self) -> None:
        if self.host is None:
            return
        times = [t for t in (s.wake_at for s in self.topic_states.values()) if t is not None]
        retry = self.retry.next_wake()
        if retry is not None:
            times.append(retry)
        at = min(times) if times else None
        if at != self.wake_at:
            self.wake_at = at
            self._tell_host(SwarmWake(at))

    def _close_all(self, reason: str) -> None:
        for conn_id in list(self.live):
            self._tell_host(CloseConnection(conn_id, reason))

    def _reset_queue(self) -> None:
        for key in [k for bucket in self.queue.values() for k in bucket]:
            peer = self.peers.get(key)
            if peer is not None:
                self.send(peer, PeerDial(True, self.now, reserved=False))
        self.queue.clear()
        self.retry = RetryTimers(self.rng, self.retry.periods, 0.0)

    def on_suspend(self, msg: SuspendSwarm) -> None:
        if self.suspended or self.stopped:
            return
        self.suspended = True
        for address in self.topics.values():
            self.send(address, TopicInput(TopicEvent.SUSPEND, msg.now))
        self._close_all("suspended")
        self._reset_queue()

    def on_resume(self, msg: ResumeSwarm) -> None:
        if not self.suspended or self.stopped:
            return
        self.suspended = False
        for address in self.topics.values():
            self.send(address, TopicInput(TopicEvent.RESUME, msg.now))
        self._attempt_client_connections()

    def on_stop(self, msg: StopSwarm) -> None:
        if self.stopped:
            return
        self.stopped = True
        for topic in list(self.topics):
            self.on_leave_topic(LeaveTopic(topic, msg.now))
        self._close_all("destroyed")
        self._reset_queue()
        while self.pending_flushes:
            self._tell_host(FlushDone(self.pending_flushes.pop().request_id, False))

    def on_stats(self, msg: SwarmStatsRequest) -> None:
        self._tell_host(SwarmStats(msg.request_id, self.connecting, self.client_connections,
                                   self.server_connections, self.queued, dict(self.counters)))


HANDLERS: dict[type, Callable[[SwarmActor, Any], None]] = {
    RefreshTopic: SwarmActor.on_refresh_topic,
    LeaveTopic: SwarmActor.on_leave_topic,
    TopicQueryDone: SwarmActor.on_topic_query_done,
    JoinPeer: SwarmActor.on_join_peer,
    LeavePeer: SwarmActor.on_leave_peer,
    BanPeer: SwarmActor.on_ban_peer,
    SetReconnect: SwarmActor.on_set_reconnect,
    DialResult: SwarmActor.on_dial_result,
    AdmitIncoming: SwarmActor.on_admit_incoming,
    IncomingConnection: SwarmActor.on_incoming_connection,
    ConnectionEnded: SwarmActor.on_connection_ended,
    FlushRequest: SwarmActor.on_flush,
    SwarmTimer: SwarmActor.on_timer,
    SuspendSwarm: SwarmActor.on_suspend,
    ResumeSwarm: SwarmActor.on_resume,
    StopSwarm: SwarmActor.on_stop,
    SwarmStatsRequest: SwarmActor.on_stats,
}
