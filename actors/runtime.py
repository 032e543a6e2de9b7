"""The node runtime: an asyncio host for one node's in-process actor system.

It owns the I/O (two UDP sockets) and the clock.  Datagrams and timer
expiries enter the DHTActor as messages; the actor's :class:`Outbox` replies
tell the runtime what to send and when to wake it next.  Thespian's
``simpleSystemBase`` runs every send synchronously inside ``tell``, so the
actors live on this loop without threads.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from thespian.actors import ActorSystem, PoisonMessage

from hyperswarm_hugin.actors.auth_actor import AuthActor
from hyperswarm_hugin.actors.dht_actor import DHTActor
from hyperswarm_hugin.actors.messages import (
    AnswerHandshake,
    AuthReady,
    AuthStatus,
    ConfigureAuth,
    DatagramsReceived,
    DHTStatus,
    FindNode,
    FindNodeResult,
    IncomingHandshake,
    IncomingHolepunch,
    Outbox,
    PingNode,
    PingResult,
    Reachability,
    ReachabilityRequest,
    RequestResult,
    RunQuery,
    SendRequest,
    ServeTarget,
    StartDHT,
    StatusRequest,
    StopDHT,
    TimerFired,
    Verdict,
)
from hyperswarm_hugin.actors.udp import UdpEndpoint
from hyperswarm_hugin.actors.udx_io import StreamMux, StreamTransport
from hyperswarm_hugin.protocol.dht.events import DHTEvent, NodeReady
from hyperswarm_hugin.protocol.dht.node import CLIENT, SERVER, NodeOptions
from hyperswarm_hugin.protocol.encoding import Address
from hyperswarm_hugin.protocol.hyperdht.holepunch import PunchBudget

log = logging.getLogger(__name__)

T = TypeVar("T")

LOG_DEFS: dict[str, Any] = {"version": 1, "disable_existing_loggers": False}


@dataclass
class RuntimeConfig:
    """Where a node binds, and how its DHT behaves."""

    host: str = "127.0.0.1"
    port: int = 0
    options: NodeOptions = field(default_factory=NodeOptions)
    seed: int | None = None


class NodeRuntime:
    """Hosts one node's actors on the running asyncio loop."""

    def __init__(self, config: RuntimeConfig) -> None:
        self.config = config
        self.loop = asyncio.get_running_loop()
        self.system: Any = None
        self.dht: Any = None
        self._endpoints: dict[int, UdpEndpoint] = {}
        self._socket_numbers = itertools.count(CLIENT + 1)
        self._probe_handlers: dict[int, Callable[[int, Address], None]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._wake_at: float | None = None
        self._requests = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._ready: asyncio.Future[NodeReady] = self.loop.create_future()
        self.wall_skew = 0.0  # added to the wall clock the node is told: a bench moves it to fake a sleep
        self.listeners: list[Callable[[DHTEvent], None]] = []
        self.streams = StreamMux(self.loop)
        self.handshake_handlers: dict[bytes, Callable[[IncomingHandshake], None]] = {}
        self.holepunch_handlers: dict[bytes, Callable[[IncomingHolepunch], None]] = {}
        self.punch_budget = PunchBudget()  # random-NAT punches of this node (hyperdht's limit)
        self.auth: Any = None
        self.message_handlers: list[Callable[[Any], bool]] = []
        self._inbox: deque[Any] = deque()
        self._dispatching = False
        self.actor_failures = 0
        self.closed = False

    @property
    def server_address(self) -> Address:
        return self._local(SERVER)

    @property
    def client_address(self) -> Address:
        return self._local(CLIENT)

    def _local(self, socket: int) -> Address:
        return self._endpoints[socket].address

    async def start(self) -> None:
        """Bind the sockets, start the actor system and the DHT node."""
        cfg = self.config
        try:
            for socket, port in ((SERVER, cfg.port), (CLIENT, 0)):
                endpoint = UdpEndpoint(self.loop, self._receiver(socket))
                self._endpoints[socket] = endpoint
                endpoint.bind(cfg.host, port)
        except OSError:
            self._close_endpoints()
            raise
        self.system = ActorSystem("simpleSystemBase", transientUnique=True, logDefs=LOG_DEFS)
        self.dht = self.system.createActor(DHTActor)
        options = cfg.options
        if options.nat_seed is not None and options.nat_seed[1] == 0:
            options.nat_seed = (options.nat_seed[0], self.server_address[1])
        self._tell(StartDHT(options, self.server_address[1], self.client_address[1], self.loop.time(),
                            cfg.seed if cfg.seed is not None else random.randrange(2**63),
                            wall_offset=time.time() - self.loop.time()))

    async def ready(self) -> NodeReady:
        """Wait until the node has bootstrapped."""
        return await asyncio.shield(self._ready)

    async def find_node(self, target: bytes) -> FindNodeResult:
        """Iterative FIND_NODE: the (up to 20) closest nodes that answered."""
        if len(target) != 32:
            raise ValueError("a target is 32 bytes")
        return await self._ask(lambda rid: FindNode(rid, target, self.loop.time()), FindNodeResult)

    async def query(self, target: bytes, command: int, value: bytes | None = None, *,
                    commit: Any = None, internal: bool = False,
                    nodes: list[Address] | None = None, avoid: list[Address] | None = None) -> FindNodeResult:
        """Any iterative query (hyperdht commands by default); see DHTNode.query for ``commit``,
        ``nodes`` and ``avoid``."""
        if len(target) != 32:
            raise ValueError("a target is 32 bytes")
        return await self._ask(
            lambda rid: RunQuery(rid, target, command, value, self.loop.time(), commit, internal, nodes,
                                     avoid),
            FindNodeResult)

    async def request(self, address: Address, command: int, *, target: bytes | None = None,
                      value: bytes | None = None, internal: bool = False, retries: int | None = None,
                      socket: int | None = None, token: bytes | None = None) -> RequestResult:
        """One request with retries (from ``socket``, e.g. a puncher socket); the result carries
        the full response (or an error)."""
        return await self._ask(
            lambda rid: SendRequest(rid, address, command, self.loop.time(), target, value, internal, retries,
                                    socket, token),
            RequestResult)

    def serve(self, target: bytes, handler: Callable[[IncomingHandshake], None] | None,
              holepunch: Callable[[IncomingHolepunch], None] | None = None) -> None:
        """Receive the PEER_HANDSHAKEs (and relayed PEER_HOLEPUNCHes) for ``target`` (None stops)."""
        if handler is None:
            self.handshake_handlers.pop(target, None)
            self.holepunch_handlers.pop(target, None)
        else:
            self.handshake_handlers[target] = handler
            if holepunch is not None:
                self.holepunch_handlers[target] = holepunch
        self._tell(ServeTarget(target, handler is not None))

    # ------------------------------------------------------------------ puncher sockets

    def open_socket(self, on_probe: Callable[[int, Address], None]) -> int:
        """A new UDP socket (hyperdht's socket pool) on our host; returns its number.

        Datagrams of more than one byte are DHT messages (or UDX packets of a stream routed
        there); 0-1 byte datagrams are holepunch probes, given to ``on_probe(socket, source)``.
        The socket closes on :meth:`release_socket` once no stream uses it.
        """
        if self.closed:
            raise RuntimeError("the node is closed")
        number = next(self._socket_numbers)
        endpoint = UdpEndpoint(self.loop, self._receiver(number))
        endpoint.bind(self.config.host, 0)
        endpoint.pooled = True
        endpoint.hold()
        endpoint.on_closed = lambda ep: self._forget_socket(number)
        self._endpoints[number] = endpoint
        self._probe_handlers[number] = on_probe
        return number

    def release_socket(self, number: int) -> None:
        """The puncher is done with ``number``: it closes now unless a stream was routed over it."""
        self._probe_handlers.pop(number, None)
        endpoint = self._endpoints.get(number)
        if endpoint is not None:
            endpoint.release()

    def _forget_socket(self, number: int) -> None:
        self._endpoints.pop(number, None)
        self._probe_handlers.pop(number, None)

    def endpoint(self, number: int) -> UdpEndpoint:
        return self._endpoints[number]

    def socket_address(self, number: int) -> Address:
        return self._endpoints[number].address

    def send_probe(self, number: int, address: Address, ttl: int) -> None:
        """One holepunch probe (a single zero byte) from socket ``number``."""
        endpoint = self._endpoints.get(number)
        if endpoint is not None:
            endpoint.send_with_ttl(b"\x00", address, ttl)

    def answer_handshake(self, request: Any, to: Address, socket: int | None, value: bytes, *,
                         as_response: bool) -> None:
        self._tell(AnswerHandshake(request, to, socket, value, as_response))

    def configure_auth(self, config: ConfigureAuth) -> bytes | None:
        """Start (or reconfigure) this node's AuthActor; returns our signed ``mid``."""
        if self.auth is None:
            self.auth = self.system.createActor(AuthActor)
        ready = self.ask_auth(config)
        assert isinstance(ready, AuthReady)
        return ready.mid

    def ask_auth(self, msg: Any) -> Any:
        """A synchronous question to the AuthActor (in-process: it answers inside ``tell``)."""
        if self.auth is None:
            raise RuntimeError("no AuthActor: call configure_auth first")
        return self.ask_actor(self.auth, msg, (AuthReady, Verdict, AuthStatus))

    def ask_actor(self, address: Any, msg: Any, answers: tuple[type, ...]) -> Any:
        """Tell an in-process actor ``msg`` and return its reply of one of the ``answers`` types
        (None if it gave none); other replies go through the dispatch loop, never re-entrantly."""
        if self.system is None:
            raise RuntimeError("the node is closed")
        self.system.tell(address, msg)
        answer = None
        while (reply := self.system.listen(0)) is not None:
            if answer is None and isinstance(reply, answers):
                answer = reply
            else:
                self._inbox.append(reply)
        self._dispatch()
        return answer

    def tell_actor(self, address: Any, msg: Any) -> None:
        """Tell another actor of this node's system; its replies reach ``message_handlers``."""
        if self.system is None:
            return
        self.system.tell(address, msg)
        self._collect()
        self._dispatch()

    async def ping(self, address: Address) -> PingResult:
        return await self._ask(lambda rid: PingNode(rid, address, self.loop.time()), PingResult)

    async def status(self) -> DHTStatus:
        return await self._ask(StatusRequest, DHTStatus)

    def reachability_now(self) -> Reachability:
        """Whether the node is firewalled and its sampled public address, at once (a connect's
        question: :meth:`status_now` also copies the routing table and every counter)."""
        answer = self.ask_actor(self.dht, ReachabilityRequest(0), (Reachability,))
        if not isinstance(answer, Reachability):
            raise RuntimeError("the DHT actor gave no reachability")
        return answer

    def status_now(self) -> DHTStatus:
        """The node's status at once (the in-process DHTActor answers inside ``tell``)."""
        answer = self.ask_actor(self.dht, StatusRequest(0), (DHTStatus,))
        if not isinstance(answer, DHTStatus):
            raise RuntimeError("the DHT actor gave no status")
        return answer

    async def _ask(self, make: Callable[[int], Any], answer: type[T]) -> T:
        if self.closed:
            raise RuntimeError("the node is closed")
        rid = next(self._requests)
        fut: asyncio.Future[Any] = self.loop.create_future()
        self._waiting[rid] = fut
        self._tell(make(rid))
        result = await fut
        assert isinstance(result, answer)
        return result

    async def close(self) -> None:
        """Stop the node: fail waiting requests, close sockets, shut the actor system down."""
        if self.closed:
            return
        self._tell(StopDHT())
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(RuntimeError("the node was closed"))
        self._waiting.clear()
        if not self._ready.done():
            self._ready.set_exception(RuntimeError("the node was closed before it was ready"))
            self._ready.exception()
        for transport in list(self.streams.streams.values()):
            transport.destroy()
            self.streams.forget(transport)
        self._close_endpoints()
        if self.system is not None:
            self.system.shutdown()
            self.system = None

    def _close_endpoints(self) -> None:
        for endpoint in list(self._endpoints.values()):
            endpoint.close()

    # ------------------------------------------------------------------ actor plumbing

    def _receiver(self, socket: int) -> Callable[[list[tuple[bytes, Address]]], None]:
        def received(datagrams: list[tuple[bytes, Address]]) -> None:
            if self.closed:
                return
            now = self.loop.time()
            rest = self.streams.dispatch(datagrams, now, self._endpoints[socket])
            if rest and socket > CLIENT:
                probes = [source for data, source in rest if len(data) <= 1]
                if probes:
                    rest = [d for d in rest if len(d[0]) > 1]
                    on_probe = self._probe_handlers.get(socket)
                    for source in probes:
                        if on_probe is not None:
                            on_probe(socket, source)
            if rest:
                self._tell(DatagramsReceived(rest, socket, now))

        return received

    def create_stream(self, socket: int = SERVER, local_id: int | None = None) -> StreamTransport:
        """A new UDX stream on one of this node's sockets (the server socket by default)."""
        if self.closed:
            raise RuntimeError("the node is closed")
        return self.streams.create(self._endpoints[socket], local_id=local_id)

    def _on_timer(self) -> None:
        self._timer = None
        self._wake_at = None
        if not self.closed:
            self._tell(TimerFired(self.loop.time(), time.time() + self.wall_skew))

    def _tell(self, msg: Any) -> None:
        if self.system is None:
            return
        self.system.tell(self.dht, msg)
        self._collect()
        self._dispatch()

    def _dispatch(self) -> None:
        if self._dispatching:
            return  # the loop further up the stack handles what was collected
        self._dispatching = True
        try:
            while self._inbox:
                self._handle(self._inbox.popleft())
        finally:
            self._dispatching = False

    def _collect(self) -> None:
        while (reply := self.system.listen(0)) is not None:
            self._inbox.append(reply)

    def _handle(self, reply: Any) -> None:
        if isinstance(reply, Outbox):
            self._send_all(reply.datagrams)
            for ev in reply.events:
                self._event(ev)
            self._arm(reply.wake_at)
        elif isinstance(reply, IncomingHandshake):
            handler = self.handshake_handlers.get(reply.request.target)
            if handler is not None:
                handler(reply)
        elif isinstance(reply, IncomingHolepunch):
            on_holepunch = self.holepunch_handlers.get(reply.request.target)
            if on_holepunch is not None:
                on_holepunch(reply)
        elif isinstance(reply, FindNodeResult | PingResult | DHTStatus | RequestResult):
            fut = self._waiting.pop(reply.request_id, None)
            if fut is not None and not fut.done():
                fut.set_result(reply)
        elif isinstance(reply, PoisonMessage):
            self.actor_failures += 1
            log.error("an actor failed on %s", type(reply.poisonMessage).__name__)
        elif any(handler(reply) for handler in self.message_handlers):
            pass
        else:
            log.warning("unexpected message from an actor: %r", type(reply).__name__)

    def _send_all(self, datagrams: list[tuple[bytes, Address, int]]) -> None:
        """Send an outbox in order; consecutive datagrams to one address from one socket go as a
        batch (one syscall per run of equal sizes, see :meth:`UdpEndpoint.send_batch`)."""
        endpoints = self._endpoints
        count = len(datagrams)
        i = 0
        while i < count:
            data, to, socket = datagrams[i]
            j = i + 1
            while j < count and datagrams[j][2] == socket and datagrams[j][1] == to:
                j += 1
            endpoint = endpoints.get(socket)
            if endpoint is not None:  # a puncher socket may have closed meanwhile
                if j - i == 1:
                    endpoint.send(data, to)
                else:
                    endpoint.send_batch([d[0] for d in datagrams[i:j]], to)
            i = j

    def _event(self, ev: DHTEvent) -> None:
        if isinstance(ev, NodeReady) and not self._ready.done():
            self._ready.set_result(ev)
        for listener in list(self.listeners):
            listener(ev)

    def _arm(self, wake_at: float | None) -> None:
        if wake_at == self._wake_at or self.closed:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wake_at = wake_at
        if wake_at is not None:
            self._timer = self.loop.call_at(wake_at, self._on_timer)
