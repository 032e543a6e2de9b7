"""The dht-rpc node as a sans-IO state machine.

Feed it datagrams with :meth:`DHTNode.receive_datagram` and time with
:meth:`DHTNode.handle_timer` (monotonic ``now`` for its timers, and the wall clock, whose jump
between two ticks tells that the machine slept); collect what to send with
:meth:`DHTNode.datagrams_to_send`, when to wake it with :meth:`DHTNode.get_timer`
and what happened with :meth:`DHTNode.next_event`.  The node has two sockets,
``SERVER`` (the announced port) and ``CLIENT`` (requests while firewalled),
named here by number; the I/O adapter owns the real ones.

The node answers requests, keeps the routing table and sends requests; its helpers live
beside it: :mod:`.query_runner` (iterative queries), :mod:`.network_check` (reachability
and persistence), :mod:`.table_health` (the check pings that decide who stays in the table),
:mod:`.congestion` (the request window) and :mod:`.timers`.  The first three are parts of one
node: they hold its back-reference and send through ``_new_request`` / ``_send_request``, which
stay private to this package.
"""

from __future__ import annotations

import itertools
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from hyperswarm_hugin.protocol.dht import messages as m
from hyperswarm_hugin.protocol.dht.congestion import CongestionWindow
from hyperswarm_hugin.protocol.dht.events import (
    DHTEvent,
    ErrorCode,
    NodeReady,
    NodeWokeUp,
    RequestDone,
)
from hyperswarm_hugin.protocol.dht.ids import node_id
from hyperswarm_hugin.protocol.dht.nat_sampler import NatSampler
from hyperswarm_hugin.protocol.dht.network_check import NetworkCheck
from hyperswarm_hugin.protocol.dht.outgoing import CLIENT as CLIENT
from hyperswarm_hugin.protocol.dht.outgoing import PING_NAT_KINDS, Outgoing, RequestKind
from hyperswarm_hugin.protocol.dht.outgoing import SERVER as SERVER
from hyperswarm_hugin.protocol.dht.query_runner import CommitFn, QueryPurpose, QueryRunner
from hyperswarm_hugin.protocol.dht.routing_table import RoutingTable, TableNode
from hyperswarm_hugin.protocol.dht.stats import NodeStats
from hyperswarm_hugin.protocol.dht.table_health import CHECK_KINDS, OLD_NODE_TICKS, TableHealth
from hyperswarm_hugin.protocol.dht.timers import TimerKind, Timers
from hyperswarm_hugin.protocol.dht.tokens import TokenSecrets
from hyperswarm_hugin.protocol.encoding import Address, encode_ipv4_address
from hyperswarm_hugin.protocol.errors import DecodeError

REQUEST_TIMEOUT = 1.0
DRAIN_INTERVAL = 0.75
TICK_INTERVAL = 5.0
SLEEP_GAP = 15.0
TOKEN_ROTATE_DRAINS = 10
PING_SWEEP_TICKS = 8
REFRESH_IDLE_TICKS = 60
REFRESH_SMALL_TICKS = 64


class RequestHandler(Protocol):
    """The application layer (hyperdht) behind a node: it gets every non-internal request."""

    def on_request(self, req: m.Request, address: Address, socket: int, now: float) -> bool:
        """Handle ``req`` (reply, forward or drop); False lets the node answer UNKNOWN_COMMAND."""
        ...


@dataclass(slots=True)
class NodeOptions:
    """How a node behaves; the defaults are dht-rpc's.

    ``ephemeral``: True stays ephemeral, False becomes persistent as soon as the
    network check passes, None (adaptive) re-checks after ~20 minutes.
    ``firewalled=False`` trusts that our server port is reachable.  ``nat_seed``
    pre-loads our public address (a bootstrapper with no bootstrap list).
    """

    bootstrap: list[Address] = field(default_factory=list)
    ephemeral: bool | None = None
    firewalled: bool = True
    quick_firewall: bool = True
    nat_seed: Address | None = None
    k: int = 20
    concurrency: int = 10
    max_ping_delay_ms: int = 10_000
    down_hints_per_tick: int = 50
    request_retries: int = 3
    query_retries: int = 5


class DHTNode:
    """One dht-rpc node: answers the built-in commands, keeps the table, runs queries."""

    def __init__(
        self,
        options: NodeOptions,
        *,
        server_port: int,
        client_port: int,
        now: float,
        rng: random.Random | None = None,
        wall: float | None = None,
    ) -> None:
        self.options = options
        self.server_port = server_port
        self.client_port = client_port
        self.rng = rng or random.Random()
        self.stats = NodeStats()
        self.nat = NatSampler()
        self.tokens = TokenSecrets(self.rng.randbytes(32), self.rng.randbytes(32))
        self.firewalled = options.firewalled
        self.ephemeral = True
        self.bootstrapped = False
        self.destroyed = False
        self.table = RoutingTable(self.rng.randbytes(32), options.k)
        self.tick = 50 + self.rng.randrange(50)
        self._last_tick_time = now
        self._last_tick_wall = wall
        self._wall_anchor = None if wall is None else (now, wall)  # (monotonic, wall) last told together
        self._refresh_ticks = REFRESH_SMALL_TICKS
        self._tid = self.rng.randrange(65536)
        self._ids = itertools.count(1)
        self._inflight: dict[int, Outgoing] = {}
        self._window: CongestionWindow[Outgoing] = CongestionWindow()
        self._drains = 0
        self._out: list[tuple[bytes, Address, int]] = []
        self._events: deque[DHTEvent] = deque()
        self._timers = Timers()
        self._queries = QueryRunner(self)
        self._down_hints_left = options.down_hints_per_tick
        self._anonymous_samplers: set[Address] = set()
        self.app: RequestHandler | None = None
        self._network = NetworkCheck(self)
        self._health = TableHealth(self)
        self._timers.schedule(now + DRAIN_INTERVAL, TimerKind.DRAIN)
        self._timers.schedule(now + TICK_INTERVAL, TimerKind.TICK)
        if options.nat_seed is not None:
            self.nat.add(options.nat_seed)
        if options.ephemeral is False and not options.bootstrap and options.nat_seed is not None:
            # A bootstrapper knows its address and is reachable: persistent at once.
            self._network.become_persistent(options.nat_seed)

    # ------------------------------------------------------------------ public API

    @property
    def id(self) -> bytes | None:
        """Our node id while persistent (what we put on the wire), else None."""
        return None if self.ephemeral else self.table.id

    @property
    def requests_socket(self) -> int:
        return CLIENT if self.firewalled else SERVER

    @property
    def requests_in_flight(self) -> int:
        return len(self._inflight)

    def bootstrap(self, now: float) -> int:
        """Join the network: a background FIND_NODE for our own table id."""
        return self._queries.start(
            self.table.id, m.FIND_NODE, internal=True, value=None, now=now,
            purpose=QueryPurpose.BOOTSTRAP, background=True, seeds=None,
        )

    def find_node(self, target: bytes, now: float) -> int:
        """An iterative FIND_NODE for ``target``; a :class:`QueryDone` reports it."""
        return self.query(target, m.FIND_NODE, internal=True, now=now)

    def query(
        self,
        target: bytes,
        command: int,
        *,
        now: float,
        internal: bool = False,
        value: bytes | None = None,
        commit: bool | CommitFn = False,
        nodes: list[Address] | None = None,
        avoid: list[Address] | None = None,
    ) -> int:
        """Start an iterative query; returns its id (see :class:`QueryDone`).

        ``commit=True`` re-sends the same request with each closest node's token when the
        walk ends; a function chooses, per closest reply, what to send instead.  ``nodes`` are
        the walk's seeds (default: the table); the walk never visits ``avoid`` (known dead).
        """
        self._refresh_ticks = REFRESH_IDLE_TICKS
        commit_fn: CommitFn | None = (lambda reply: (command, value)) if commit is True else commit or None
        return self._queries.start(
            target, command, internal=internal, value=value, now=now, purpose=QueryPurpose.USER,
            background=False, seeds=nodes, commit=commit_fn, avoid=avoid,
        )

    def ping(self, address: Address, now: float) -> int:
        """Ping ``address`` once (with retries); a :class:`RequestDone` reports it."""
        return self.request(address, m.PING, internal=True, now=now)

    def request(
        self,
        address: Address,
        command: int,
        *,
        now: float,
        internal: bool = False,
        target: bytes | None = None,
        value: bytes | None = None,
        token: bytes | None = None,
        retries: int | None = None,
        socket: int | None = None,
    ) -> int:
        """Send one request (with retries) from ``socket`` (default: the node's requests socket);
        a :class:`RequestDone` reports it."""
        out = self._new_request(
            address, command, internal=internal, target=target, value=value, token=token,
            retries=self.options.request_retries if retries is None else retries, kind=RequestKind.USER,
            socket=socket,
        )
        self._send_request(out, now)
        return out.rid

    def destroy(self) -> None:
        """Stop: fail everything in flight; the node sends nothing more."""
        if self.destroyed:
            return
        self.destroyed = True
        for out in list(self._inflight.values()) + list(self._window.deferred):
            out.done = True
            if out.kind is RequestKind.USER:
                self._events.append(RequestDone(out.rid, None, out.address, ErrorCode.DESTROYED))
        self._inflight.clear()
        self._window.deferred.clear()
        self._queries.destroy()
        self._timers.clear()
        self._out.clear()

    def datagrams_to_send(self) -> list[tuple[bytes, Address, int]]:
        """``(data, address, socket)`` triples to send now."""
        out, self._out = self._out, []
        return out

    def next_event(self) -> DHTEvent | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` must next be called, or None."""
        return self._timers.next_deadline()

    def handle_timer(self, now: float, wall: float | None = None) -> None:
        """Run every timer due at ``now`` (monotonic); ``wall`` is the wall clock (Unix seconds).

        A monotonic clock stops while the machine is suspended, so only the wall clock shows a
        sleep: a jump of more than SLEEP_GAP between two ticks is a wake-up (dht-rpc's
        ``_ontick``).  Without ``wall`` only a stall of the monotonic clock is noticed."""
        if wall is not None:
            self._wall_anchor = (now, wall)
        while (due := self._timers.pop_due(now)) is not None:
            kind, ref = due
            if kind is TimerKind.RETRY:
                assert isinstance(ref, Outgoing)
                if not ref.done:
                    self._on_request_timeout(ref, now)
            elif kind is TimerKind.DRAIN:
                self._drain(now)
            elif kind is TimerKind.TICK:
                self._tick(now, wall)
            elif kind is TimerKind.SEND:
                assert isinstance(ref, tuple)
                self._out.append(ref)

    def wall_clock(self, now: float) -> float | None:
        """The wall clock (Unix seconds) at monotonic ``now``: the last wall time we were given
        (construction or :meth:`handle_timer`, at least once a tick) moved on by the monotonic
        time since.  Re-anchored at every timer, it follows a suspend (the monotonic clock stood
        still) or a step of the wall clock within a tick; None if no wall time was ever given."""
        if self._wall_anchor is None:
            return None
        mono, wall = self._wall_anchor
        return wall + (now - mono)

    # ------------------------------------------------------------------ incoming

    def receive_datagram(self, data: bytes, address: Address, socket: int, now: float) -> None:
        """Handle one datagram from ``address`` that arrived on ``socket``."""
        if self.destroyed:
            return
        self.stats.received += 1
        if len(data) < 2 or not 0 < address[1] < 65536:
            self.stats.dropped_malformed += 1
            return
        try:
            msg = m.decode_message(data)
        except DecodeError:
            self.stats.dropped_malformed += 1
            return
        if isinstance(msg, m.Request):
            self.stats.request_in(msg.internal, msg.command)
            self._on_request(msg, address, socket, now)
        else:
            self.stats.responses_in += 1
            self._on_response(msg, address, socket, now)

    def _verified_id(self, claimed: bytes | None, address: Address) -> bytes | None:
        if claimed is None:
            return None
        if node_id(address) != claimed:
            self.stats.bad_ids += 1
            return None
        return claimed

    def _on_request(self, req: m.Request, address: Address, socket: int, now: float) -> None:
        if req.id is not None and (sender_id := self._verified_id(req.id, address)) is not None:
            self._heard_from(sender_id, address, req.to if socket <= CLIENT else None, now)
        if req.token is not None and not self.tokens.verify(req.token, address[0]):
            self._reply(req, address, socket, error=m.INVALID_TOKEN, token=True,
                        closer=req.target is not None)
            return
        if not req.internal:
            if self.app is not None and self.app.on_request(req, address, socket, now):
                return
            self._reply(req, address, socket, error=m.UNKNOWN_COMMAND, closer=req.target is not None)
            return
        cmd = req.command
        if cmd == m.PING:
            self._reply(req, address, socket)
        elif cmd == m.FIND_NODE:
            if req.target is not None:
                self._reply(req, address, socket, closer=True)
        elif cmd == m.PING_NAT:
            if req.value is None or len(req.value) < 2:
                return
            port = req.value[0] | (req.value[1] << 8)
            if port == 0:
                return
            # Only ever towards the requester's own host: no reflection elsewhere.
            self._reply(req, (address[0], port), socket)
        elif cmd == m.DOWN_HINT:
            if req.value is not None and len(req.value) >= 6:
                self._health.down_hint(req.value, now)
            self._reply(req, address, socket)
        elif cmd == m.DELAYED_PING:
            if req.value is None or len(req.value) < 4:
                return
            delay_ms = int.from_bytes(req.value[:4], "little")
            if delay_ms > self.options.max_ping_delay_ms:
                return
            data = self._response_bytes(req, address, socket)
            self.stats.response_out(req.internal, req.command)
            self._timers.schedule(now + delay_ms / 1000, TimerKind.SEND, (data, address, socket))
        else:
            self._reply(req, address, socket, error=m.UNKNOWN_COMMAND, closer=req.target is not None)

    def _response_bytes(
        self, req: m.Request, to: Address, socket: int, *, error: int = m.OK,
        token: bool = False, closer: bool = False, value: bytes | None = None,
    ) -> bytes:
        return m.encode_response(
            req.tid, to, self.table.id if (not self.ephemeral and socket == SERVER) else None,
            self.tokens.issue(to[0]) if token else None,
            self.table.closest_addresses(req.target) if closer and req.target is not None else [],
            error, value,
        )

    def _reply(
        self, req: m.Request, to: Address, socket: int, *, error: int = m.OK,
        token: bool = False, closer: bool = False, value: bytes | None = None,
    ) -> None:
        self.stats.response_out(req.internal, req.command)
        self._out.append((self._response_bytes(req, to, socket, error=error, token=token,
                                                closer=closer, value=value), to, socket))

    def reply(
        self, req: m.Request, to: Address, socket: int, *, value: bytes | None = None,
        token: bool = True, closer: bool = True, error: int = m.OK,
    ) -> None:
        """Answer ``req`` (as dht-rpc's reply: a token and closer nodes unless told otherwise)."""
        self._reply(req, to, socket, error=error, token=token, closer=closer, value=value)

    def send_raw(self, data: bytes, to: Address, socket: int | None = None) -> None:
        """Send bytes outside any transaction (relayed requests and replies)."""
        self._out.append((data, to, self.requests_socket if socket is None else socket))

    def own_id_for(self, socket: int) -> bytes | None:
        """The id to put on a datagram leaving ``socket``."""
        return self.table.id if (not self.ephemeral and socket == SERVER) else None

    def _on_response(self, res: m.Response, address: Address, socket: int, now: float) -> None:
        out = self._inflight.get(res.tid)
        if out is None or out.done:
            self.stats.unmatched_responses += 1
            return
        if out.kind not in PING_NAT_KINDS and out.address != address:
            # dht-rpc matches by tid alone; we also want the same peer to answer.
            self.stats.unmatched_responses += 1
            return
        del self._inflight[res.tid]
        out.done = True
        self.stats.response_in(out.internal, out.command)
        self._window.replied()
        replier_id = self._verified_id(res.id, address)
        # A puncher socket's replies describe that socket's NAT mapping, not ours.
        own_socket = socket <= CLIENT
        if replier_id is not None:
            self._heard_from(replier_id, address, res.to if own_socket else None, now)
        elif own_socket and address not in self._anonymous_samplers and \
                len(self._anonymous_samplers) < max(1, len(self.options.bootstrap)):
            # Id-less repliers (a bootstrapper not yet persistent) may still tell us our address.
            self._anonymous_samplers.add(address)
            self.nat.add(res.to)
        self._complete(out, res, address, socket, now)

    def _heard_from(self, nid: bytes, address: Address, reported_to: Address | None, now: float) -> None:
        existing = self.table.get(nid)
        if existing is not None:
            existing.seen = existing.pinged = self.tick
            existing.heard += 1
            if reported_to is not None and (existing.sampled == 0 or self.tick - existing.sampled > OLD_NODE_TICKS):
                existing.sampled = self.tick
                self.nat.add(reported_to)
            return
        node = TableNode(nid, address[0], address[1], added=self.tick, seen=self.tick,
                         pinged=self.tick, sampled=self.tick)
        if reported_to is not None:
            self.nat.add(reported_to)
        if self.table.add(node):
            return
        self._health.newcomer(node, now)

    # ------------------------------------------------------------------ outgoing

    def _next_tid(self) -> int:
        for _ in range(65536):
            self._tid = (self._tid + 1) & 0xFFFF
            if self._tid not in self._inflight:
                return self._tid
        raise RuntimeError("65536 requests in flight")

    def _new_request(
        self, address: Address, command: int, *, internal: bool, retries: int, kind: RequestKind,
        target: bytes | None = None, value: bytes | None = None, token: bytes | None = None,
        socket: int | None = None,
    ) -> Outgoing:
        sock = self.requests_socket if socket is None else socket
        tid = self._next_tid()
        req = m.Request(
            tid=tid, to=address, command=command, internal=internal,
            id=self.table.id if (not self.ephemeral and sock == SERVER) else None,
            token=token, target=target, value=value,
        )
        out = Outgoing(next(self._ids), tid, address, sock, req.encode(), retries, kind, internal, command)
        self._inflight[tid] = out
        return out

    def _send_request(self, out: Outgoing, now: float) -> None:
        if self.destroyed:
            return
        if not self._window.admit(out):
            self.stats.deferred += 1
            return
        self._transmit(out, now)

    def _transmit(self, out: Outgoing, now: float) -> None:
        out.sent += 1
        out.deadline = now + REQUEST_TIMEOUT
        self.stats.request_out(out.internal, out.command)
        self._out.append((out.data, out.address, out.socket))
        self._timers.schedule(out.deadline, TimerKind.RETRY, out)

    def _on_request_timeout(self, out: Outgoing, now: float) -> None:
        if out.retries_left > 0:
            out.retries_left -= 1
            self._transmit(out, now)
            if out.query is not None and not out.slow:
                out.slow = True
                self._queries.visit_slow(out.query, now)
            return
        out.done = True
        self._inflight.pop(out.tid, None)
        self.stats.request_timeouts += 1
        if out.kind is RequestKind.QUERY:
            # As dht-rpc: only a request that names the node's id (a query visit) evicts it on a
            # timeout; an application request (a silent refusal) or a commit does not.
            dead = self.table.get(node_id(out.address))
            if dead is not None and dead.address == out.address:
                self._health.drop(dead)
        self._complete(out, None, out.address, out.socket, now)

    def _complete(
        self, out: Outgoing, res: m.Response | None, address: Address, socket: int, now: float
    ) -> None:
        kind = out.kind
        if kind is RequestKind.USER:
            self._events.append(RequestDone(out.rid, res, address, None if res else ErrorCode.REQUEST_TIMEOUT))
        elif kind is RequestKind.QUERY:
            assert out.query is not None
            self._queries.visit_done(out.query, out, res, address, now)
        elif kind is RequestKind.COMMIT:
            assert out.query is not None
            self._queries.commit_done(out.query, res, now)
        elif kind in CHECK_KINDS:
            self._health.check_done(out, res)
        elif kind in PING_NAT_KINDS:
            self._network.ping_nat_done(out, res, socket, now)
        # HINT needs nothing more.

    # ------------------------------------------------------------------ readiness and down hints

    def _mark_ready(self) -> None:
        if self.bootstrapped:
            return
        self.bootstrapped = True
        self._events.append(NodeReady(self.id, self.firewalled, self.ephemeral))

    def _send_down_hint(self, to: Address, down: Address, now: float) -> None:
        if self._down_hints_left == 0:
            return
        if self._down_hints_left > 0:
            self._down_hints_left -= 1
        out = self._new_request(to, m.DOWN_HINT, internal=True, retries=3, kind=RequestKind.HINT,
                                value=encode_ipv4_address(down))
        self._send_request(out, now)

    # ------------------------------------------------------------------ time

    def _drain(self, now: float) -> None:
        for out in self._window.drain():
            self._transmit(out, now)
        self._drains += 1
        if self._drains % TOKEN_ROTATE_DRAINS == 0:
            self.tokens.rotate()
        self._timers.schedule(now + DRAIN_INTERVAL, TimerKind.DRAIN)

    def _tick(self, now: float, wall: float | None) -> None:
        slept = now - self._last_tick_time > SLEEP_GAP
        if wall is not None:
            slept = slept or (self._last_tick_wall is not None and wall - self._last_tick_wall > SLEEP_GAP)
            self._last_tick_wall = wall
        self._last_tick_time = now
        self._timers.schedule(now + TICK_INTERVAL, TimerKind.TICK)
        self._down_hints_left = self.options.down_hints_per_tick
        if slept:
            self._wake_up()
        else:
            self.tick += 1
        if not self.bootstrapped:
            return
        if self.tick % PING_SWEEP_TICKS == 0:
            self._health.sweep(now)
        elif not len(self.table) and not self._queries.refreshing():
            # Nobody answered yet (the bootstrap nodes were down or not up yet): ask them again
            # every tick rather than every PING_SWEEP_TICKS as dht-rpc does.
            self._refresh(now)
        self._refresh_ticks -= 1
        if self._refresh_ticks <= 0:
            self._refresh(now)
        self._network.on_tick(now)

    def _wake_up(self) -> None:
        """After a sleep (dht-rpc's ``_onwakeup``): every table node looks old, so it is
        re-pinged (the sweep comes two ticks later) and re-sampled; refresh next tick; an
        adaptive node is ephemeral until a network check passes.  We also forget our sampled
        address (dht-rpc keeps it): the machine may have woken on another network, and 13 of
        16 old samples would otherwise outvote the new address for a long while."""
        self.tick += 2 * OLD_NODE_TICKS
        self.tick += PING_SWEEP_TICKS - (self.tick % PING_SWEEP_TICKS) - 2
        self._refresh_ticks = 1
        self.nat = NatSampler()
        self._anonymous_samplers.clear()
        self._network.after_sleep()
        self._events.append(NodeWokeUp())

    def _refresh(self, now: float) -> None:
        self._refresh_ticks = REFRESH_IDLE_TICKS if len(self.table) >= self.options.k else REFRESH_SMALL_TICKS
        member = self.table.random(self.rng)
        target = member.id if member is not None else self.table.id
        self._queries.start(target, m.FIND_NODE, internal=True, value=None, now=now,
                          purpose=QueryPurpose.REFRESH, background=True, seeds=None)
