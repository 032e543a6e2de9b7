"""Is our server port reachable?  The DHT node's network check, and persistence (dht-rpc §11.3-11.4).

A check PING_NATs up to five recently seen nodes, asking each to answer on our server port; enough
answers there, naming the address NAT sampling agreed on, make the node unfirewalled and (unless it
is told to stay ephemeral) persistent: it takes the id ``hash(address)``.  An adaptive node re-checks
after ~20 minutes, and after the machine slept.  A quick PING_NAT to the first node that answered
the bootstrap walk decides whether the full check is worth running.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hyperswarm_hugin.protocol.dht import messages as m
from hyperswarm_hugin.protocol.dht.events import NodeBecamePersistent
from hyperswarm_hugin.protocol.dht.ids import node_id
from hyperswarm_hugin.protocol.dht.nat_sampler import NatSampler
from hyperswarm_hugin.protocol.dht.outgoing import SERVER, Outgoing, RequestKind
from hyperswarm_hugin.protocol.dht.query_runner import QueryPurpose
from hyperswarm_hugin.protocol.encoding import Address

if TYPE_CHECKING:
    from hyperswarm_hugin.protocol.dht.node import DHTNode

MAX_TARGETS = 5
PERSISTENCE_FIRST_CHECK_TICKS = 240
PERSISTENCE_RECHECK_TICKS = 720
FORCED_RECHECK_TICKS = 60
"""A node told to be persistent that lost its id (it moved) re-checks every ~5 minutes."""
MOVED_MIN_SAMPLES = 3
"""Samples that must agree on another host before a persistent node believes it moved."""


@dataclass(slots=True)
class _Probe:
    """PING_NATs in flight to decide whether our server port is reachable."""

    pending: int
    asked: int
    then_bootstrap: bool
    firewall_only: bool
    sampled: Address | None
    answers: list[Address] = field(default_factory=list)


class NetworkCheck:
    """One node's reachability checks and its move to persistent."""

    def __init__(self, node: DHTNode) -> None:
        self._node = node
        self._probe: _Probe | None = None
        self._quick_answer = False
        self._next_check_tick = node.tick + PERSISTENCE_FIRST_CHECK_TICKS
        self._persistent_host: str | None = None

    def quick_probe(self, replier: Address, now: float) -> None:
        """The bootstrap walk's first reply came from ``replier``: one PING_NAT to it, no retries."""
        node = self._node
        if not node.options.quick_firewall or not node.firewalled or node.options.ephemeral is False:
            return
        out = node._new_request(replier, m.PING_NAT, internal=True, retries=0, kind=RequestKind.QUICK_PING_NAT,
                                value=node.server_port.to_bytes(2, "little"))
        node._send_request(out, now)

    def bootstrap_walk_done(self, now: float) -> None:
        """The bootstrap walk ended: check the network first if that is due, else the node is ready."""
        node = self._node
        if node.bootstrapped:
            return
        if node.options.ephemeral is False and node.ephemeral:
            self._start(now, then_bootstrap_again=True)
        elif self._quick_answer and node.firewalled:
            self._start(now, then_bootstrap_again=True, firewall_only=True)
        else:
            node._mark_ready()

    def after_sleep(self) -> None:
        """The machine slept: an adaptive node is ephemeral again until a re-check."""
        node = self._node
        if node.options.ephemeral is None and not node.ephemeral:
            node.ephemeral = True
        self._next_check_tick = node.tick + PERSISTENCE_RECHECK_TICKS

    def on_tick(self, now: float) -> None:
        """A persistent node whose sampled host is no longer the one its id hashes goes ephemeral
        and checks at once (it moved: its old id is wrong everywhere); an ephemeral node that may
        be persistent re-checks every PERSISTENCE_RECHECK_TICKS (adaptive) or FORCED_RECHECK_TICKS
        (told to be persistent, once it had to give its id up)."""
        node = self._node
        if self._probe is not None or node.options.ephemeral is True:
            return
        if not node.ephemeral:
            if not self._moved():
                return
            node.ephemeral = True
            self._next_check_tick = node.tick
        if node.tick < self._next_check_tick:
            return
        if node.options.ephemeral is None:
            self._next_check_tick = node.tick + PERSISTENCE_RECHECK_TICKS
        elif self._persistent_host is not None:
            self._next_check_tick = node.tick + FORCED_RECHECK_TICKS
        else:
            return  # told to be persistent, never was: its first check runs after bootstrapping
        self._start(now, then_bootstrap_again=False)

    def _moved(self) -> bool:
        nat = self._node.nat
        return (self._persistent_host is not None and nat.host is not None
                and len(nat) >= MOVED_MIN_SAMPLES and nat.host != self._persistent_host)

    def _start(self, now: float, *, then_bootstrap_again: bool, firewall_only: bool = False) -> None:
        """PING_NAT to up to 5 recently seen nodes; decide firewalled / persistent (§11.3-11.4)."""
        node = self._node
        targets = [n.address for n in sorted(node.table, key=lambda n: -n.seen)[:MAX_TARGETS]]
        for addr in node._queries.bootstrap_to_ask(now, others=len(targets)):
            if len(targets) >= MAX_TARGETS:
                break
            if addr not in targets:
                targets.append(addr)
        probe = _Probe(len(targets), len(targets), then_bootstrap_again, firewall_only, node.nat.address)
        self._probe = probe
        if not targets:
            self._finish(now)
            return
        for addr in targets:
            out = node._new_request(addr, m.PING_NAT, internal=True, retries=node.options.request_retries,
                                    kind=RequestKind.CHECK_PING_NAT, value=node.server_port.to_bytes(2, "little"))
            node._send_request(out, now)

    def ping_nat_done(self, out: Outgoing, res: m.Response | None, socket: int, now: float) -> None:
        """A PING_NAT of ours ended with ``res`` (None: timed out), received on ``socket``."""
        if out.kind is RequestKind.QUICK_PING_NAT:
            if res is not None and socket == SERVER and not self._node.bootstrapped:
                self._quick_answer = True
            return
        probe = self._probe
        if probe is None:
            return
        probe.pending -= 1
        if res is not None and socket == SERVER:
            probe.answers.append(res.to)
        if probe.pending == 0:
            self._finish(now)

    def _finish(self, now: float) -> None:
        node = self._node
        probe = self._probe
        assert probe is not None
        self._probe = None
        answers = probe.answers
        need = 3 if probe.asked >= MAX_TARGETS else 1
        host, port = node.nat.host, node.nat.port
        # Reachable: enough PING_NAT answers reached our server socket, each naming our
        # sampled host and our server port, and sampling agreed on a stable address
        # that did not change while we checked.
        reachable = (
            host is not None
            and port != 0
            and len(answers) >= need
            and all(a == (host, node.server_port) for a in answers)
            and probe.sampled == (host, port)
        )
        if reachable and host is not None:
            node.firewalled = False
            if not probe.firewall_only and node.options.ephemeral is not True and node.ephemeral:
                # dht-rpc swaps in the samples taken on the server socket: from now on our
                # address is where the server socket is seen, not the client socket.
                node.nat = NatSampler()
                for answer in answers:
                    node.nat.add(answer)
                self.become_persistent((host, node.server_port))
        if probe.then_bootstrap:
            node._queries.start(node.table.id, m.FIND_NODE, internal=True, value=None, now=now,
                                purpose=QueryPurpose.REFRESH, background=True, seeds=None)
            node._mark_ready()

    def become_persistent(self, address: Address) -> None:
        """We are reachable at ``address``: take its id, keeping the table's nodes."""
        node = self._node
        node.ephemeral = False
        node.firewalled = False
        self._persistent_host = address[0]
        if node.table.id != node_id(address):
            node.table = node.table.copy_to(node_id(address))
        node._events.append(NodeBecamePersistent(node.table.id, address))
