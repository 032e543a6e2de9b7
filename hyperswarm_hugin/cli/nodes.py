"""``dht``, ``testnet`` and ``relay``: DHT nodes and blind relays."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyperswarm_hugin import DHT, KeyPair, Testnet
from hyperswarm_hugin.cli.output import emit, event_fields, metrics_fields, run_until_stopped, start_metrics
from hyperswarm_hugin.config.settings import (
    DHTSettings,
    RelaySettings,
    TestnetSettings,
)
from hyperswarm_hugin.protocol.dht.events import DHTEvent

if TYPE_CHECKING:
    from hyperswarm_hugin.blind_relay import BlindRelayServer
    from hyperswarm_hugin.metrics import MetricsServer


async def run_dht(settings: DHTSettings) -> None:
    node = DHT(bootstrap=settings.bootstrap, host=settings.host, port=settings.port,
               mode=settings.mode, firewalled=settings.firewalled)

    def on_event(ev: DHTEvent) -> None:
        found = event_fields(ev)
        if found:
            emit(found[0], **found[1])

    metrics: MetricsServer | None = None

    async def body() -> None:
        nonlocal metrics
        await node.start()
        host, port = node.address
        metrics = start_metrics(settings, dht=node)
        emit("listening", host=host, port=port, id=node.expected_id.hex(), **metrics_fields(metrics))
        node.on_event(on_event)

    try:
        await run_until_stopped(settings.timeout, body)
        if node._runtime is not None:
            status = await node.status()
            emit("stats", **status.stats, table_size=len(status.table))
    finally:
        if metrics is not None:
            metrics.close()
        await node.close()
        emit("close")


async def run_testnet(settings: TestnetSettings) -> None:
    net: Testnet | None = None

    async def body() -> None:
        nonlocal net
        net = await Testnet.create(settings.size, settings.host, settings.port)
        emit("testnet", bootstrap=[f"{h}:{p}" for h, p in net.bootstrap],
             nodes=[{"host": n.address[0], "port": n.address[1], "id": n.expected_id.hex()}
                    for n in net.nodes])

    try:
        await run_until_stopped(settings.timeout, body)
    finally:
        if net is not None:
            await net.close()
        emit("close")


async def run_relay(settings: RelaySettings) -> None:
    """A blind relay for anyone: its own DHT node (persistent once reachable) and a server whose
    connections are relay sessions."""
    from hyperswarm_hugin.blind_relay import BlindRelayServer

    node = DHT(bootstrap=settings.bootstrap, host=settings.host, port=settings.port, firewalled=False)
    key_pair = KeyPair.from_seed(bytes.fromhex(settings.seed)) if settings.seed else KeyPair.random()
    relay: BlindRelayServer | None = None

    async def body() -> None:
        nonlocal relay
        await node.start()
        await node.ready()
        relay = BlindRelayServer(node.runtime)
        await node.listen(key_pair, on_connection=relay.accept)
        host, port = node.address
        emit("relay", publicKey=key_pair.public_key.hex(), host=host, port=port)

    try:
        await run_until_stopped(settings.timeout, body)
    finally:
        if relay is not None:
            emit("relay-stats", **vars(relay.stats))
            await relay.close()
        await node.close()
        emit("stopped")
