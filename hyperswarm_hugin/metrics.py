"""Prometheus metrics of a running node, read from the live objects when scraped (docs/metrics.md).

Nothing is counted on the hot path for them: a scrape (on the HTTP server's thread) asks the
node's asyncio loop for one snapshot (the DHT runtime's status, the swarm's stats and its
server's handshake counters) and turns it into metric families.  ``serve_metrics`` runs the
HTTP server (``/metrics`` in the Prometheus text format, written by prometheus-client).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

__all__ = ["Collector", "MetricsServer", "NodeCollector", "cluster_collector", "serve_metrics"]

from hyperswarm_hugin.actors.messages import DHTStatus
from hyperswarm_hugin.dht import DHT
from hyperswarm_hugin.peer_connect import ServerStats
from hyperswarm_hugin.swarm import Hyperswarm

log = logging.getLogger(__name__)

SCRAPE_TIMEOUT = 5.0

# DHTStatus.stats key -> (metric name without _total, help)
DHT_COUNTERS: dict[str, tuple[str, str]] = {
    "received": ("hyperdht_datagrams_received", "UDP datagrams received by the DHT node"),
    "dropped_malformed": ("hyperdht_dropped_malformed", "datagrams dropped as malformed"),
    "datagram_errors": ("hyperdht_datagram_errors", "datagrams whose handling failed"),
    "requests_in": ("hyperdht_requests_received", "DHT requests received"),
    "app_requests_in": ("hyperdht_app_requests_received",
                        "hyperdht requests received (handshakes, announces, lookups, values)"),
    "responses_in": ("hyperdht_responses_received", "DHT responses received"),
    "requests_out": ("hyperdht_requests_sent", "DHT requests sent, retries included"),
    "responses_out": ("hyperdht_responses_sent", "DHT responses sent"),
    "request_timeouts": ("hyperdht_request_timeouts", "DHT requests that timed out (each try)"),
    "deferred": ("hyperdht_requests_deferred", "DHT requests held back by the congestion window"),
    "unmatched_responses": ("hyperdht_unmatched_responses", "responses to no request of ours"),
    "bad_ids": ("hyperdht_bad_ids", "messages whose node id does not match their address"),
}
STORAGE = {"storage_records": "peer", "storage_router": "router", "storage_mutable": "mutable",
           "storage_immutable": "immutable"}
NAT_TYPES = ("open", "consistent", "random", "unknown")


def nat_type(status: DHTStatus) -> str:
    """open / consistent / random / unknown, from the DHT's view of our address."""
    if not status.firewalled:
        return "open"
    if status.public_address is None:
        return "unknown"
    return "random" if status.public_address[1] == 0 else "consistent"


@dataclass
class Snapshot:
    """What one scrape reads, taken on the node's loop."""

    dht: DHTStatus | None
    swarm: dict[str, Any] | None = None
    server: ServerStats | None = None
    topics: int = 0
    peers: int = 0
    banned: int = 0


def dht_metrics(status: DHTStatus) -> Iterator[Metric]:
    for key, (name, doc) in DHT_COUNTERS.items():
        if key in status.stats:
            yield CounterMetricFamily(name, doc, value=status.stats[key])
    yield GaugeMetricFamily("hyperdht_routing_table_nodes", "nodes in the routing table", value=len(status.table))
    yield GaugeMetricFamily("hyperdht_firewalled", "1 while the DHT node is firewalled (not reachable unasked)",
                            value=int(status.firewalled))
    yield GaugeMetricFamily("hyperdht_ephemeral", "1 while the node is ephemeral (not in others' tables)",
                            value=int(status.ephemeral))
    yield GaugeMetricFamily("hyperdht_bootstrapped", "1 once the node has bootstrapped", value=int(status.bootstrapped))
    nat = GaugeMetricFamily("hyperdht_nat_type", "1 for the NAT type the DHT sees us behind", labels=["type"])
    current = nat_type(status)
    for kind in NAT_TYPES:
        nat.add_metric([kind], int(kind == current))
    yield nat
    commands = CounterMetricFamily("hyperdht_commands_received", "hyperdht requests received, by command",
                                   labels=["command"])
    dropped = CounterMetricFamily("hyperdht_commands_dropped", "hyperdht requests dropped, by reason",
                                  labels=["reason"])
    for key, count in sorted(status.stats.items()):
        kind, _, name = key.partition(":")
        if kind == "command":
            commands.add_metric([name], count)
        elif kind == "dropped":
            dropped.add_metric([name], count)
    yield commands
    yield dropped
    stored = GaugeMetricFamily("hyperdht_storage_records", "records this node keeps for others", labels=["kind"])
    for key, kind in STORAGE.items():
        if key in status.stats:
            stored.add_metric([kind], status.stats[key])
    yield stored


def swarm_metrics(snap: Snapshot) -> Iterator[Metric]:
    s = snap.swarm
    assert s is not None
    conns = GaugeMetricFamily("hyperswarm_connections", "connections by direction and state",
                              labels=["direction", "state"])
    conns.add_metric(["client", "open"], s["client_connections"])
    conns.add_metric(["server", "open"], s["server_connections"])
    conns.add_metric(["client", "connecting"], s.get("connecting", 0))
    yield conns
    yield GaugeMetricFamily("hyperswarm_queued_peers", "peers waiting for a connect", value=s["queued"])
    connects = s["connects"]
    yield CounterMetricFamily("hyperswarm_connects_attempted", "connects we attempted (client)",
                              value=connects["client"]["attempted"])
    for what in ("opened", "closed"):
        family = CounterMetricFamily(f"hyperswarm_connects_{what}", f"connections {what}, by direction",
                                     labels=["direction"])
        for direction in ("client", "server"):
            family.add_metric([direction], connects[direction][what])
        yield family
    failed = CounterMetricFamily("hyperswarm_connects_failed", "our connects that failed, by reason",
                                 labels=["reason"])
    for reason, count in sorted(s.get("connect_failures", {}).items()):
        failed.add_metric([reason], count)
    yield failed
    yield CounterMetricFamily("hyperswarm_duplicate_connections", "connections closed as duplicates",
                              value=s["duplicates"])
    yield CounterMetricFamily("hyperswarm_bans", "peers banned (firewall or ban())", value=s["banned_peers"])
    yield CounterMetricFamily("hyperswarm_topic_queries", "topic announces and lookups", value=s["topic_queries"])
    yield CounterMetricFamily("hyperswarm_topic_queries_failed", "topic queries that reached no DHT node",
                              value=s["topic_queries_failed"])
    yield CounterMetricFamily("hyperswarm_actor_restarts", "swarm actors restarted by their supervisor",
                              value=s["actor_restarts"])
    yield CounterMetricFamily("hyperswarm_received_bytes", "encrypted bytes received on connections",
                              value=s["bytes_in"])
    yield CounterMetricFamily("hyperswarm_sent_bytes", "encrypted bytes sent on connections", value=s["bytes_out"])
    yield GaugeMetricFamily("hyperswarm_topics", "topics joined", value=snap.topics)
    yield GaugeMetricFamily("hyperswarm_peers", "peers known (found or connected)", value=snap.peers)
    yield GaugeMetricFamily("hyperswarm_banned_peers", "known peers that are banned now", value=snap.banned)
    server = snap.server or ServerStats()
    yield CounterMetricFamily("hyperswarm_handshakes", "handshakes our server answered", value=server.handshakes)
    yield CounterMetricFamily("hyperswarm_handshakes_accepted", "handshakes accepted", value=server.accepted)
    refused = CounterMetricFamily("hyperswarm_handshakes_refused", "handshakes refused, by reason",
                                  labels=["reason"])
    for reason, count in sorted(server.refused.items()):
        refused.add_metric([reason], count)
    yield refused
    yield CounterMetricFamily("hyperswarm_handshakes_never_started",
                              "accepted clients that never sent a packet", value=server.never_started)
    yield CounterMetricFamily("hyperswarm_holepunched", "accepted clients reached by holepunching",
                              value=server.holepunched)
    yield CounterMetricFamily("hyperswarm_relayed", "accepted clients paired through a blind relay",
                              value=server.relayed)


class NodeCollector(Collector):
    """Metrics of a DHT node, or of a swarm and its DHT node, that run on ``loop``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, dht: DHT | None = None, swarm: Hyperswarm | None = None,
                 timeout: float = SCRAPE_TIMEOUT) -> None:
        self.loop = loop
        self.dht = dht
        self.swarm = swarm
        self.timeout = timeout

    async def snapshot(self) -> Snapshot:
        """Read the live objects (on the loop: their state is the loop's)."""
        dht = self.swarm.dht if self.swarm is not None else self.dht
        if dht is None or not dht.running:
            return Snapshot(None)
        snap = Snapshot(await dht.status())
        swarm = self.swarm
        if swarm is not None and not swarm.destroyed:
            snap.swarm = {**swarm.stats, "connecting": swarm.connecting}
            snap.server = swarm.server_stats
            snap.topics = len(swarm.topics())
            snap.peers = len(swarm.peers)
            snap.banned = sum(1 for info in swarm.peers.values() if info.banned)
        return snap

    def collect(self) -> Iterator[Metric]:
        try:
            snap = asyncio.run_coroutine_threadsafe(self.snapshot(), self.loop).result(self.timeout)
        except Exception as exc:  # a stopping node: no figures, not a failed scrape
            log.info("metrics snapshot failed: %r", exc)
            return
        if snap.dht is not None:
            yield from dht_metrics(snap.dht)
        if snap.swarm is not None:
            yield from swarm_metrics(snap)

    def describe(self) -> list[Metric]:
        return []  # no scrape at registration (it would wait on the loop)


class FunctionCollector(Collector):
    """Metrics a function builds on each scrape (the cluster's: it asks the supervisor)."""

    def __init__(self, build: Callable[[], list[Metric]]) -> None:
        self.build = build
        self.lock = threading.Lock()  # scrapes arrive on threads of their own

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            try:
                found = self.build()
            except Exception as exc:
                log.info("metrics failed: %r", exc)
                return
        yield from found

    def describe(self) -> list[Metric]:
        return []


def registry_with(*collectors: Collector) -> CollectorRegistry:
    """A registry of ``collectors`` and this process's own figures (CPU, memory, open files)."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    for collector in collectors:
        registry.register(collector)
    return registry


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("metrics: " + format, *args)


class MetricsServer:
    """``/metrics`` over HTTP on ``host:port`` (port 0: any free port, see ``address``)."""

    def __init__(self, registry: CollectorRegistry, host: str = "127.0.0.1", port: int = 0) -> None:
        self.httpd = make_server(host, port, make_wsgi_app(registry), ThreadingWSGIServer, handler_class=_Quiet)
        self.address: tuple[str, int] = (host, int(self.httpd.server_address[1]))
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       name="metrics", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(2)


def serve_metrics(host: str, port: int, *collectors: Collector) -> MetricsServer:
    return MetricsServer(registry_with(*collectors), host, port)


def cluster_collector(admin_port: int, timeout: float = SCRAPE_TIMEOUT) -> FunctionCollector:
    """The cluster's nodes as its supervisor sees them: up, restarts; asked on each scrape."""
    from hyperswarm_hugin.cluster.remote import RemoteSwarm

    handle: list[RemoteSwarm] = []

    def build() -> list[Metric]:
        if not handle:
            handle.append(RemoteSwarm.connect_cluster(admin_port, timeout))
        nodes = handle[0].nodes()
        up = GaugeMetricFamily("hugin_cluster_node_up", "1 while the node runs", labels=["node", "kind", "system"])
        restarts = CounterMetricFamily("hugin_cluster_node_restarts", "times the supervisor restarted the node",
                                       labels=["node", "kind", "system"])
        for node in nodes:
            labels = [str(node["name"]), str(node.get("kind") or ""), str(node.get("system") or "")]
            up.add_metric(labels, int(bool(node["running"])))
            restarts.add_metric(labels, node["restarts"])
        return [GaugeMetricFamily("hugin_cluster_nodes", "nodes in the cluster file", value=len(nodes)), up, restarts]

    return FunctionCollector(build)
