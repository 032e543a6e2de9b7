"""A simulated loopback network of sans-IO DHT nodes on a fake clock, for tests."""

from __future__ import annotations

import random
from collections.abc import Callable

from hyperswarm_hugin.protocol.dht.events import DHTEvent
from hyperswarm_hugin.protocol.dht.node import CLIENT, SERVER, DHTNode, NodeOptions
from hyperswarm_hugin.protocol.encoding import Address

HOST = "127.0.0.1"


class SimNet:
    """Nodes addressed by (host, port); datagrams delivered in order at the next step.

    ``now`` is the wall clock of the network.  A node's monotonic clock is ``now`` less the time
    it spent asleep (:meth:`sleep`: nothing reaches it, its timers stand still, as a suspended
    laptop's); nodes are told both.
    """

    def __init__(self, seed: int = 1, loss: Callable[[bytes], bool] | None = None) -> None:
        self.rng = random.Random(seed)
        self.now = 1000.0
        self.nodes: list[DHTNode] = []
        self.sockets: dict[Address, tuple[DHTNode, int]] = {}
        self.events: dict[int, list[DHTEvent]] = {}
        self.loss = loss
        self._next_port = 20000
        self.delivered = 0
        self.hosts: dict[int, str] = {}
        self.lag: dict[int, float] = {}  # node -> seconds its monotonic clock stood still
        self.asleep: set[int] = set()

    def add_node(self, options: NodeOptions, *, bootstrap_now: bool = True) -> DHTNode:
        server, client = self._next_port, self._next_port + 1
        self._next_port += 2
        if options.nat_seed == ("?", 0):
            options.nat_seed = (HOST, server)
        node = DHTNode(options, server_port=server, client_port=client, now=self.now,
                       rng=random.Random(self.rng.random()), wall=self.now)
        self.nodes.append(node)
        self.sockets[(HOST, server)] = (node, SERVER)
        self.sockets[(HOST, client)] = (node, CLIENT)
        self.events[id(node)] = []
        if bootstrap_now:
            node.bootstrap(self.now)
        return node

    def address(self, node: DHTNode) -> Address:
        return (self.hosts.get(id(node), HOST), node.server_port)

    def _source(self, node: DHTNode, socket: int) -> Address:
        return (self.hosts.get(id(node), HOST), node.server_port if socket == SERVER else node.client_port)

    def mono(self, node: DHTNode) -> float:
        """``node``'s monotonic clock."""
        return self.now - self.lag.get(id(node), 0.0)

    def move(self, node: DHTNode, host: str) -> None:
        """``node`` now sends from and is reached at ``host`` (a new network)."""
        self.sockets = {a: s for a, s in self.sockets.items() if s[0] is not node}
        self.hosts[id(node)] = host
        self.sockets[(host, node.server_port)] = (node, SERVER)
        self.sockets[(host, node.client_port)] = (node, CLIENT)

    def sleep(self, node: DHTNode, seconds: float) -> None:
        """Suspend ``node`` for ``seconds`` of the network's time (the others run on)."""
        self.asleep.add(id(node))
        self.advance(seconds)
        self.asleep.discard(id(node))
        self.lag[id(node)] = self.lag.get(id(node), 0.0) + seconds

    def flush(self) -> int:
        """Deliver every datagram queued anywhere, repeatedly, until the network is quiet."""
        moved = 0
        for _ in range(10_000):
            batch = []
            for node in self.nodes:
                if id(node) in self.asleep:
                    continue
                for data, to, socket in node.datagrams_to_send():
                    batch.append((self._source(node, socket), data, to))
                while (ev := node.next_event()) is not None:
                    self.events[id(node)].append(ev)
            if not batch:
                return moved
            for src, data, to in batch:
                if self.loss is not None and self.loss(data):
                    continue
                target = self.sockets.get(to)
                if target is None:
                    continue
                dst, socket = target
                if id(dst) in self.asleep:
                    continue
                dst.receive_datagram(data, src, socket, self.mono(dst))
                moved += 1
                self.delivered += 1
        raise AssertionError("network never went quiet")

    def advance(self, seconds: float) -> None:
        """Move the clock forward, firing timers in order and delivering traffic between them."""
        end = self.now + seconds
        self.flush()
        for _ in range(1_000_000):
            awake = [n for n in self.nodes if id(n) not in self.asleep]
            due = [t + self.lag.get(id(n), 0.0) for n in awake if (t := n.get_timer()) is not None]
            nxt = min(due) if due else None
            if nxt is None or nxt > end:
                break
            self.now = max(self.now, nxt)
            for node in awake:
                t = node.get_timer()
                if t is not None and t <= self.mono(node):
                    node.handle_timer(self.mono(node), wall=self.now)
            self.flush()
        self.now = end
        self.flush()

    def run_until(self, done: Callable[[], bool], limit: float = 120.0, step: float = 0.05) -> None:
        waited = 0.0
        self.flush()
        while not done():
            if waited >= limit:
                raise AssertionError(f"condition not met within {limit} simulated seconds")
            self.advance(step)
            waited += step

    def take_events(self, node: DHTNode) -> list[DHTEvent]:
        self.flush()
        evs = self.events[id(node)]
        self.events[id(node)] = []
        return evs


def sim_testnet(size: int, seed: int = 1) -> SimNet:
    """A bootstrapper plus ``size - 1`` forced-persistent nodes, all ready."""
    net = SimNet(seed)
    net.add_node(NodeOptions(ephemeral=False, firewalled=False, nat_seed=("?", 0)))
    boot = [net.address(net.nodes[0])]
    for _ in range(size - 1):
        node = net.add_node(NodeOptions(bootstrap=list(boot), ephemeral=False))
        net.run_until(lambda n=node: n.bootstrapped)
    return net
