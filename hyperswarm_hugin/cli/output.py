"""What every command shares: JSON lines on stdout, running until a signal or ``--timeout``, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from hyperswarm_hugin.protocol.dht.events import DHTEvent, NodeBecamePersistent, NodeReady

if TYPE_CHECKING:
    from hyperswarm_hugin import DHT, Hyperswarm
    from hyperswarm_hugin.config.settings import DHTSettings, PeerSettings
    from hyperswarm_hugin.metrics import MetricsServer


CLEAN_CLOSE_WAIT = 10.0


def emit(event: str, **fields: Any) -> None:
    """Write one JSON event line to stdout."""
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def event_fields(ev: DHTEvent) -> tuple[str, dict[str, Any]] | None:
    if isinstance(ev, NodeReady):
        return "ready", {"id": ev.id.hex() if ev.id else None, "firewalled": ev.firewalled,
                         "ephemeral": ev.ephemeral}
    if isinstance(ev, NodeBecamePersistent):
        return "persistent", {"id": ev.id.hex(), "host": ev.address[0], "port": ev.address[1]}
    return None


async def run_until_stopped(timeout: float | None, body: Callable[[], Awaitable[None]]) -> None:
    """Run ``body`` then wait for SIGINT/SIGTERM or the timeout."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await body()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def start_metrics(settings: DHTSettings | PeerSettings, *, dht: DHT | None = None,
                  swarm: Hyperswarm | None = None) -> MetricsServer | None:
    """``--metrics-port``: serve /metrics on it (on ``--metrics-host``, loopback by default).
    prometheus_client is imported only then (it costs an idle peer ~1 MB)."""
    if settings.metrics_port is None:
        return None
    from hyperswarm_hugin.metrics import NodeCollector, serve_metrics

    collector = NodeCollector(asyncio.get_running_loop(), dht=dht, swarm=swarm)
    return serve_metrics(settings.metrics_host, settings.metrics_port, collector)


def metrics_fields(metrics: MetricsServer | None) -> dict[str, Any]:
    """``metrics``: where /metrics is served, for the first JSON line (only with --metrics-port)."""
    return {"metrics": f"http://{metrics.address[0]}:{metrics.address[1]}/metrics"} if metrics else {}
