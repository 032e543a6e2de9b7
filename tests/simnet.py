"""A simulated loopback network of sans-IO DHT nodes on a fake clock, for tests."""

from __future__ import annotations

import random
from collections.abc import Callable

from protocol.dht.events import DHTEvent
from protocol.dht.node import CLIENT, SERVER, DHTNode, NodeOptions
from protocol.encoding import Address

HOST = "127.0.0.1"


class SimNet:
    """Nodes addressed by (host, port); datagrams delivered in order at the next step."""

    def __init__(self, seed: int = 1, loss: Callable[[bytes], bool] | None = None) -> None:
        self.rng = random.Random(seed)
        self.now = 1000.0
        self.nodes: list[DHTNode] = []
        self.sockets: dict[Address, tuple[DHTNode, int]] = {}
        self.events: dict[int, list[DHTEvent]] = {}
        self.loss = loss
        self._next_port = 20000
        self.delivered = 0

    def add_node(self, options: NodeOptions, *, bootstrap_now: bool = True) -> DHTNode:
        server, client = self._next_port, self._next_port + 1
        self._next_port += 2
        if options.nat_seed == ("?", 0):
            options.nat_seed = (HOST, server)
        node = DHTNode(options, server_port=server, client_port=client, now=self.now,
                       rng=random.Random(self.rng.random()))
        self.nodes.append(node)
        self.sockets[(HOST, server)] = (node, SERVER)
        self.sockets[(HOST, client)] = (node, CLIENT)
        self.events[id(node)] = []
        if bootstrap_now:
            node.bootstrap(self.now)
        return node

    def address(self, node: DHTNode) -> Address:
        return (HOST, node.server_port)

    def _source(self, node: DHTNode, socket: int) -> Address:
        return (HOST, node.server_port if socket == SERVER else node.client_port)

    def flush(self) -> int:
        """Deliver every datagram queued anywhere, repeatedly, until the network is quiet."""
        moved = 0
        for _ in range(10_000):
            batch = []
            for node in self.nodes:
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
                dst.receive_datagram(data, src, socket, self.now)
                moved += 1
                self.delivered += 1
        raise AssertionError("network never went quiet")

    def advance(self, seconds: float) -> None:
        """Move the clock forward, firing timers in order and delivering traffic between them."""
        end = self.now + seconds
        self.flush()
        for _ in range(1_000_000):
            due = [t for n in self.nodes if (t := n.get_timer()) is not None]
            nxt = min(due) if due else None
            if nxt is None or nxt > end:
                break
            self.now = max(self.now, nxt)
            for node in self.nodes:
                t = node.get_timer()
                if t is not None and t <= self.now:
                    node.handle_timer(self.now)
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
