"""A DHT node you can run from asyncio code, and a local testnet of them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType

from actors.messages import DHTStatus, FindNodeResult, PingResult
from actors.runtime import NodeRuntime, RuntimeConfig
from protocol.dht.events import DHTEvent
from protocol.dht.ids import node_id
from protocol.dht.node import NodeOptions
from protocol.encoding import Address

MODES = {"persistent": False, "adaptive": None, "ephemeral": True}


class DHT:
    """One dht-rpc node on loopback or a real interface.

    ``bootstrap`` must be given explicitly (an empty list makes a bootstrapper
    that knows its own address); ``mode`` is ``"persistent"`` (join other
    nodes' routing tables once reachable), ``"adaptive"`` or ``"ephemeral"``.
    """

    def __init__(
        self,
        *,
        bootstrap: list[Address],
        host: str = "127.0.0.1",
        port: int = 0,
        mode: str = "persistent",
        firewalled: bool = True,
        seed: int | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if bootstrap is None:
            raise ValueError("bootstrap must be given explicitly (a list, possibly empty)")
        is_bootstrapper = not bootstrap
        options = NodeOptions(
            bootstrap=list(bootstrap),
            ephemeral=MODES[mode],
            firewalled=False if is_bootstrapper else firewalled,
            nat_seed=(host, port) if is_bootstrapper else None,
        )
        self._config = RuntimeConfig(host=host, port=port, options=options, seed=seed)
        self._runtime: NodeRuntime | None = None

    @classmethod
    async def bootstrapper(cls, host: str = "127.0.0.1", port: int = 0) -> DHT:
        """A persistent node with no bootstrap list that others bootstrap from."""
        node = cls(bootstrap=[], host=host, port=port)
        await node.start()
        return node

    async def start(self) -> DHT:
        """Bind and begin bootstrapping (see :meth:`ready`)."""
        if self._runtime is not None:
            raise RuntimeError("already started")
        runtime = NodeRuntime(self._config)
        await runtime.start()
        self._runtime = runtime
        return self

    @property
    def runtime(self) -> NodeRuntime:
        if self._runtime is None:
            raise RuntimeError("the node is not started")
        return self._runtime

    @property
    def address(self) -> Address:
        """The server socket's ``(host, port)``."""
        return self.runtime.server_address

    @property
    def expected_id(self) -> bytes:
        """The id this node has once persistent at its bound address."""
        return node_id(self.address)

    def on_event(self, listener: Callable[[DHTEvent], None]) -> None:
        """Call ``listener`` with each node event (ready, persistent)."""
        self.runtime.listeners.append(listener)

    async def ready(self, timeout: float | None = None) -> None:
        """Wait until bootstrapped."""
        await asyncio.wait_for(self.runtime.ready(), timeout)

    async def find_node(self, target: bytes) -> FindNodeResult:
        """Iterative lookup of ``target``: the up-to-20 closest nodes that replied."""
        return await self.runtime.find_node(target)

    async def ping(self, address: Address) -> PingResult:
        return await self.runtime.ping(address)

    async def status(self) -> DHTStatus:
        return await self.runtime.status()

    async def close(self) -> None:
        if self._runtime is not None:
            await self._runtime.close()

    async def __aenter__(self) -> DHT:
        if self._runtime is None:
            await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class Testnet:
    """A bootstrapper and ``size - 1`` persistent nodes on one host, in this process."""

    __test__ = False  # not a pytest class

    def __init__(self, nodes: list[DHT]) -> None:
        self.nodes = nodes

    @property
    def bootstrap(self) -> list[Address]:
        return [self.nodes[0].address]

    @classmethod
    async def create(cls, size: int = 5, host: str = "127.0.0.1", port: int = 0,
                     ready_timeout: float = 30.0) -> Testnet:
        if size < 1:
            raise ValueError("a testnet has at least one node")
        nodes = [await DHT.bootstrapper(host, port)]
        net = cls(nodes)
        try:
            for _ in range(size - 1):
                node = DHT(bootstrap=net.bootstrap, host=host, firewalled=False)
                nodes.append(node)
                await node.start()
                await node.ready(ready_timeout)
        except BaseException:
            await net.close()
            raise
        return net

    async def close(self) -> None:
        for node in reversed(self.nodes):
            await node.close()

    async def __aenter__(self) -> Testnet:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
