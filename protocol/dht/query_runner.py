"""Running the DHT node's iterative queries: seed each walk, send its visits, commit, report.

:class:`~hyperswarm_hugin.protocol.dht.query.Query` keeps one walk's bookkeeping; a :class:`QueryRunner` drives the
node's walks in flight through their owner (:class:`~hyperswarm_hugin.protocol.dht.node.DHTNode`), which sends the
requests and hands back each reply or timeout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, auto
from typing import TYPE_CHECKING

from hyperswarm_hugin.protocol.dht import messages as m
from hyperswarm_hugin.protocol.dht.events import ErrorCode, QueryDone
from hyperswarm_hugin.protocol.dht.outgoing import Outgoing, RequestKind
from hyperswarm_hugin.protocol.dht.query import Query, QueryReply
from hyperswarm_hugin.protocol.encoding import Address

if TYPE_CHECKING:
    from hyperswarm_hugin.protocol.dht.node import DHTNode

BOOTSTRAP_DOWN_FOR = 60.0

CommitFn = Callable[[QueryReply], "tuple[int, bytes | None] | None"]
"""Given a closest reply, the (command, value) to send back to that node with its token."""


class QueryPurpose(Enum):
    """Why a query runs: only USER ones are reported (QueryDone)."""

    USER = auto()
    BOOTSTRAP = auto()
    """Our own id, once: its end readies the node (after a network check if one is due)."""
    REFRESH = auto()
    """Background walks that only feed the table."""


@dataclass(slots=True)
class RunningQuery:
    """One walk in flight: what it sends each node, why it runs, and its commits."""

    qid: int
    query: Query
    command: int
    internal: bool
    value: bytes | None
    commit: CommitFn | None
    background: bool
    purpose: QueryPurpose
    commits_pending: int = 0
    commits_ok: int = 0
    commit_error: str | None = None
    finished: bool = False


class QueryRunner:
    """The queries in flight of one node, and which bootstrap nodes are down for now."""

    def __init__(self, node: DHTNode) -> None:
        self._node = node
        self.running: dict[int, RunningQuery] = {}
        self._bootstrap_down: dict[Address, float] = {}  # bootstrap address -> left out until

    def start(
        self, target: bytes, command: int, *, internal: bool, value: bytes | None, now: float,
        purpose: QueryPurpose, background: bool, seeds: list[Address] | None, commit: CommitFn | None = None,
    ) -> int:
        """Start a walk towards ``target`` from ``seeds`` (None: the table and bootstrap nodes)."""
        node = self._node
        qid = next(node._ids)
        from_table = seeds is None and len(node.table) > 0
        q = Query(target, own_id=node.id, k=node.options.k,
                  concurrency=2 if background else node.options.concurrency, from_table=from_table)
        rq = RunningQuery(qid, q, command, internal, value, commit, background, purpose)
        self.running[qid] = rq
        if seeds:
            for addr in seeds:
                q.add_candidate(addr)
        else:
            self._seed_from_table(q)
            if len(node.table) < node.options.k:
                for addr in self.bootstrap_to_ask(now, others=len(node.table)):
                    q.add_candidate(addr)
        self._pump(rq, now)
        return qid

    def refreshing(self) -> bool:
        """Is a REFRESH walk running?"""
        return any(rq.purpose is QueryPurpose.REFRESH for rq in self.running.values())

    def destroy(self) -> None:
        """End every walk; USER ones report DESTROYED."""
        for rq in self.running.values():
            if not rq.finished:
                rq.finished = True
                if rq.purpose is QueryPurpose.USER:
                    self._node._events.append(QueryDone(rq.qid, [], ErrorCode.DESTROYED))
        self.running.clear()

    def bootstrap_to_ask(self, now: float, *, others: int) -> list[Address]:
        """The bootstrap nodes to ask, leaving out those that did not answer in the last minute
        while someone else (``others`` table nodes or another bootstrap node) can be asked: each
        query would wait out their retries.  dht-rpc asks every bootstrap node every time."""
        bootstrap = self._node.options.bootstrap
        answering = [a for a in bootstrap if self._bootstrap_down.get(a, 0.0) <= now]
        return answering if answering or others else list(bootstrap)

    def _seed_from_table(self, q: Query) -> None:
        # Pushed farthest first, so the nearest is visited first.
        for node in reversed(self._node.table.closest(q.target)):
            q.add_candidate(node.address)

    def _pump(self, rq: RunningQuery, now: float) -> None:
        node = self._node
        q = rq.query
        if rq.background and q.concurrency < node.options.concurrency and q.inflight < 3:
            q.concurrency = node.options.concurrency
        while (addr := q.next_visit()) is not None:
            out = node._new_request(
                addr, rq.command, internal=rq.internal, target=q.target, value=rq.value,
                retries=node.options.query_retries, kind=RequestKind.QUERY,
            )
            out.query = rq
            node._send_request(out, now)
        if q.exhausted and not rq.finished and rq.commits_pending == 0:
            if q.wants_reseed() and len(node.table):
                q.reseeded = True
                q.from_table = True
                self._seed_from_table(q)
                if not q.exhausted:
                    self._pump(rq, now)
                    return
            self._walk_done(rq, now)

    def visit_done(
        self, rq: RunningQuery, out: Outgoing, res: m.Response | None, address: Address, now: float
    ) -> None:
        """One visit of ``rq`` ended with ``res`` (None: timed out)."""
        node = self._node
        q = rq.query
        if rq.finished:
            return
        if res is None:
            for referrer in q.on_timeout(address, out.slow):
                node._send_down_hint(referrer, address, now)
            if address in node.options.bootstrap:
                self._bootstrap_down[address] = now + BOOTSTRAP_DOWN_FOR
        else:
            self._bootstrap_down.pop(address, None)
            replier_id = node._verified_id(res.id, address)
            for down in q.on_reply(
                address, replier_id=replier_id, error=res.error, closer_nodes=res.closer_nodes,
                token=res.token, value=res.value, to=res.to, was_slow=out.slow,
            ):
                node._send_down_hint(address, down, now)
            if rq.purpose is QueryPurpose.BOOTSTRAP and q.successes == 1 and res.error == m.OK:
                node._network.quick_probe(address, now)
        self._pump(rq, now)

    def _walk_done(self, rq: RunningQuery, now: float) -> None:
        node = self._node
        q = rq.query
        if rq.commit is not None and q.closest:
            for reply in q.closest:
                spec = rq.commit(reply)
                if spec is None:
                    continue
                command, value = spec
                out = node._new_request(
                    reply.address, command, internal=rq.internal, target=q.target,
                    value=value, token=reply.token, retries=node.options.request_retries,
                    kind=RequestKind.COMMIT,
                )
                out.query = rq
                rq.commits_pending += 1
                node._send_request(out, now)
            if rq.commits_pending:
                return
        self._finish(rq, now, ErrorCode.TOO_FEW_NODES_RESPONDED if rq.commit is not None else None)

    def commit_done(self, rq: RunningQuery, res: m.Response | None, now: float) -> None:
        """One commit request of ``rq`` ended with ``res`` (None: timed out)."""
        rq.commits_pending -= 1
        if res is not None and res.error == m.OK:
            rq.commits_ok += 1
        else:
            rq.commit_error = ErrorCode.REQUEST_TIMEOUT if res is None else f"ERROR_{res.error}"
        if rq.commits_pending == 0:
            self._finish(rq, now, None if rq.commits_ok else rq.commit_error)

    def _finish(self, rq: RunningQuery, now: float, error: str | None) -> None:
        rq.finished = True
        del self.running[rq.qid]
        replies: list[QueryReply] = list(rq.query.closest)
        if rq.purpose is QueryPurpose.USER:
            self._node._events.append(QueryDone(rq.qid, replies, error, list(rq.query.values)))
        elif rq.purpose is QueryPurpose.BOOTSTRAP:
            self._node._network.bootstrap_walk_done(now)
        # REFRESH queries only feed the table.
