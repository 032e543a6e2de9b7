"""DHTActor: one dht-rpc node, driven by messages (datagrams and time) from the runtime."""

from __future__ import annotations

import logging
import random
from typing import Any

from thespian.actors import Actor, ActorAddress

from hyperswarm_hugin.actors.messages import (
    AnswerHandshake,
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
)
from hyperswarm_hugin.protocol.dht import messages as m
from hyperswarm_hugin.protocol.dht.events import DHTEvent, QueryDone, RequestDone
from hyperswarm_hugin.protocol.dht.node import DHTNode
from hyperswarm_hugin.protocol.dht.stats import OTHER_COMMAND, NodeStats
from hyperswarm_hugin.protocol.hyperdht import messages as h
from hyperswarm_hugin.protocol.hyperdht.handler import HyperDHTHandler

log = logging.getLogger(__name__)



def command_name(internal: bool, command: int) -> str:
    """dht-rpc's or hyperdht's name of a command, as DHTStatus.stats uses it (``requests_in:announce``)."""
    if command == OTHER_COMMAND:
        return "other"
    names = m.COMMAND_NAMES if internal else h.COMMAND_NAMES
    return names.get(command, f"{'dht' if internal else 'app'}_{command}")


def command_stats(stats: NodeStats) -> dict[str, int]:
    """The node's per-command counters as ``requests_in:ping``, ``responses_in:find_node``, ..."""
    flat: dict[str, int] = {}
    for prefix, counts in (("requests_in", stats.requests_in_by_command),
                           ("requests_out", stats.requests_out_by_command),
                           ("responses_in", stats.responses_in_by_command),
                           ("responses_out", stats.responses_out_by_command)):
        for (internal, command), n in counts.items():
            flat[f"{prefix}:{command_name(internal, command)}"] = n
    return flat


class DHTActor(Actor):  # type: ignore[misc]
    """Owns the :class:`DHTNode`; answers with one :class:`Outbox` per input it acts on."""

    def __init__(self) -> None:
        super().__init__()
        self.node: DHTNode | None = None
        self.runtime: ActorAddress | None = None
        self.wake_at: float | None = None
        self.hyperdht: HyperDHTHandler | None = None
        self.pending: dict[int, int] = {}
        self.raw_requests: set[int] = set()  # query or request id -> the runtime's request id
        self.datagram_errors = 0  # datagrams whose handling raised (a bug): dropped and counted

    def receiveMessage(self, msg: Any, sender: ActorAddress) -> None:
        if isinstance(msg, StartDHT):
            self._start(msg, sender)
            return
        node = self.node
        if node is None:
            return
        if isinstance(msg, DatagramsReceived):
            self._receive_datagrams(node, msg)
        elif isinstance(msg, TimerFired):
            node.handle_timer(msg.now, msg.wall)
        elif isinstance(msg, FindNode):
            self.pending[node.find_node(msg.target, msg.now)] = msg.request_id
        elif isinstance(msg, RunQuery):
            qid = node.query(msg.target, msg.command, now=msg.now, internal=msg.internal, value=msg.value,
                             commit=msg.commit or False, nodes=msg.nodes, avoid=msg.avoid)
            self.pending[qid] = msg.request_id
        elif isinstance(msg, SendRequest):
            rid = node.request(msg.address, msg.command, now=msg.now, internal=msg.internal, target=msg.target,
                               value=msg.value, retries=msg.retries, socket=msg.socket, token=msg.token)
            self.pending[rid] = msg.request_id
            self.raw_requests.add(rid)
        elif isinstance(msg, ServeTarget):
            assert self.hyperdht is not None
            if msg.serve:
                self.hyperdht.servers[msg.target] = self._handshake_hook
                self.hyperdht.holepunch_servers[msg.target] = self._holepunch_hook
            else:
                self.hyperdht.servers.pop(msg.target, None)
                self.hyperdht.holepunch_servers.pop(msg.target, None)
            return
        elif isinstance(msg, AnswerHandshake):
            self._answer_handshake(node, msg)
        elif isinstance(msg, PingNode):
            self.pending[node.ping(msg.address, msg.now)] = msg.request_id
        elif isinstance(msg, StatusRequest):
            self.send(sender, self._status(node, msg.request_id))
            return
        elif isinstance(msg, ReachabilityRequest):
            self.send(sender, Reachability(msg.request_id, node.firewalled, node.nat.address))
            return
        elif isinstance(msg, StopDHT):
            node.destroy()
        else:
            log.warning("DHTActor ignores %s", type(msg).__name__)
            return
        self._flush(node)

    def _receive_datagrams(self, node: DHTNode, msg: DatagramsReceived) -> None:
        """Each datagram on its own: one that trips a bug is logged and counted, and the rest of
        the batch is still handled (an exception here would make Thespian redeliver the whole
        batch, handling the datagrams before it again)."""
        receive, socket, now = node.receive_datagram, msg.socket, msg.now
        for data, address in msg.datagrams:
            try:
                receive(data, address, socket, now)
            except Exception:
                self.datagram_errors += 1
                # Logged with its traceback the 1st, 2nd, 4th, 8th .. time: a flood cannot flood the log.
                if self.datagram_errors & (self.datagram_errors - 1) == 0:
                    log.exception("a datagram from %s:%d failed (%d so far)", *address, self.datagram_errors)

    def _start(self, msg: StartDHT, runtime: ActorAddress) -> None:
        self.runtime = runtime
        self.node = DHTNode(
            msg.options, server_port=msg.server_port, client_port=msg.client_port, now=msg.now,
            rng=random.Random(msg.seed), wall=None if msg.wall_offset is None else msg.now + msg.wall_offset,
        )
        self.hyperdht = HyperDHTHandler(self.node)
        self.node.app = self.hyperdht
        if msg.bootstrap:
            self.node.bootstrap(msg.now)
        self._flush(self.node)

    def _flush(self, node: DHTNode) -> None:
        events: list[DHTEvent] = []
        while (ev := node.next_event()) is not None:
            if isinstance(ev, QueryDone | RequestDone):
                self._answer(ev)
            else:
                events.append(ev)
        datagrams = node.datagrams_to_send()
        wake = node.get_timer()
        if datagrams or events or wake != self.wake_at:
            self.wake_at = wake
            self.send(self.runtime, Outbox(datagrams, wake, events))

    def _answer(self, ev: QueryDone | RequestDone) -> None:
        key = ev.qid if isinstance(ev, QueryDone) else ev.rid
        request_id = self.pending.pop(key, None)
        if request_id is None:
            return
        if isinstance(ev, QueryDone):
            self.send(self.runtime, FindNodeResult(request_id, ev.closest, ev.error, ev.replies))
        elif ev.rid in self.raw_requests:
            self.raw_requests.discard(ev.rid)
            self.send(self.runtime, RequestResult(request_id, ev.response, ev.address, ev.error))
        else:
            res = ev.response
            self.send(self.runtime, PingResult(
                request_id, res is not None, res.id if res else None, res.to if res else None, ev.error,
            ))

    def _handshake_hook(self, req: Any, msg: Any, source: Any, socket: int, now: float) -> None:
        self.send(self.runtime, IncomingHandshake(req, msg, source, socket, now))

    def _holepunch_hook(self, req: Any, msg: Any, source: Any, socket: int, now: float) -> None:
        self.send(self.runtime, IncomingHolepunch(req, msg, source, socket, now))

    @staticmethod
    def _answer_handshake(node: DHTNode, msg: AnswerHandshake) -> None:
        req: m.Request = msg.request
        socket = node.requests_socket if msg.socket is None else msg.socket
        if msg.as_response:
            out: m.Request | m.Response = m.Response(tid=req.tid, to=msg.to, id=node.own_id_for(socket),
                                                     value=msg.value)
        else:
            out = m.Request(tid=req.tid, to=msg.to, command=req.command, id=node.own_id_for(socket),
                            target=req.target, value=msg.value)
        node.send_raw(out.encode(), msg.to, socket)

    def _hyperdht_stats(self) -> dict[str, int]:
        """What this node keeps for others (peer records, router entries, mutable / immutable
        values) and the hyperdht requests it dropped, by reason."""
        if self.hyperdht is None:
            return {}
        storage = self.hyperdht.storage
        return {**{f"dropped:{why}": n for why, n in self.hyperdht.dropped.items()},
                "storage_records": len(storage.records), "storage_router": len(storage.router),
                "storage_mutable": len(storage.mutables), "storage_immutable": len(storage.immutables)}

    def _status(self, node: DHTNode, request_id: int) -> DHTStatus:
        return DHTStatus(
            request_id=request_id,
            id=node.id,
            table_id=node.table.id,
            ephemeral=node.ephemeral,
            firewalled=node.firewalled,
            bootstrapped=node.bootstrapped,
            public_address=node.nat.address,
            table=[(n.id, n.address) for n in node.table],
            stats={**node.stats.as_dict(), **command_stats(node.stats), "datagram_errors": self.datagram_errors,
                   **self._hyperdht_stats()},
        )
