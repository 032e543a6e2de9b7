"""``--metrics-port``: a live node's /metrics, scraped over HTTP on loopback and parsed with
prometheus-client's own parser, shows what the node did (docs/metrics.md lists the names)."""

from __future__ import annotations

import os
import signal
import socket
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.ports import free_port
from tests.system.processes import NodeProcess
from tests.system.test_cluster import Cluster

pytestmark = [pytest.mark.system, pytest.mark.timeout(120)]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    """Every sample of a scrape, by name and labels."""
    with urllib.request.urlopen(url, timeout=10) as reply:
        assert reply.status == 200
        assert reply.headers["Content-Type"].startswith("text/plain")
        text = reply.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def scrape_until(url: str, check: Callable[[Samples], bool], deadline: float, what: str) -> Samples:
    """Scrape until ``check`` holds (the node got there), or fail with the last scrape."""
    end = time.monotonic() + deadline
    while True:
        samples = scrape(url)
        if check(samples):
            return samples
        if time.monotonic() > end:
            raise AssertionError(f"{what} not seen in {deadline} s; last scrape: {sorted(samples.items())}")
        time.sleep(0.2)


def test_peers_and_a_dht_node_serve_their_metrics() -> None:
    group = os.urandom(32).hex()
    with NodeProcess("testnet", "--size", "3", "--timeout", "100") as net:
        bootstrap = net.read_event()["bootstrap"][0]
        with NodeProcess("dht", "--bootstrap", bootstrap, "--host", "127.0.0.1", "--metrics-port", "0",
                         "--timeout", "90") as dht:
            listening = dht.wait_for("listening")
            dht_url = listening["metrics"]
            assert dht_url.startswith("http://127.0.0.1:")
            dht.wait_for("persistent", 40)  # in the others' tables: it stores what is announced to it
            with NodeProcess("peer", "--bootstrap", bootstrap, "--group", group, "--role", "server", "--mode", "echo",
                             "--metrics-port", "0", "--timeout", "80") as server:
                ready = server.wait_for("ready", 20)
                server_url = ready["metrics"]
                with NodeProcess("peer", "--bootstrap", bootstrap, "--group", group, "--role", "client",
                                 "--mode", "source", "--bytes", "50000", "--metrics-port", "0",
                                 "--timeout", "80") as client:
                    client_url = client.wait_for("ready", 20)["metrics"]
                    assert client.wait_for("echoed", 30)["ok"] is True
                    with NodeProcess("peer", "--bootstrap", bootstrap, "--group", os.urandom(32).hex(),
                                     "--topic", ready["topic"], "--role", "client", "--timeout", "60") as outsider:
                        outsider.wait_for("ready", 20)
                        server.wait_for("refused", 20)

                    s = scrape_until(server_url, lambda s: (value(s, "hyperswarm_handshakes_refused_total",
                                                                  reason="bad-mid") or 0) >= 1,
                                     10, "the outsider's refusal")
                    assert value(s, "hyperswarm_handshakes_accepted_total") == 1
                    assert (value(s, "hyperswarm_handshakes_total") or 0) >= 2
                    assert value(s, "hyperswarm_connects_opened_total", direction="server") == 1
                    assert value(s, "hyperswarm_topics") == 1
                    assert (value(s, "hyperswarm_received_bytes_total") or 0) > 50000
                    assert (value(s, "hyperswarm_sent_bytes_total") or 0) > 50000
                    assert (value(s, "hyperdht_routing_table_nodes") or 0) >= 1
                    nat = {kind: value(s, "hyperdht_nat_type", type=kind)
                           for kind in ("open", "consistent", "random", "unknown")}
                    assert sorted(nat.values()) == [0, 0, 0, 1], nat  # one NAT type at a time
                    assert value(s, "hyperdht_firewalled") == (0 if nat["open"] else 1)
                    assert (value(s, "process_resident_memory_bytes") or 0) > 0

                    c = scrape(client_url)
                    assert (value(c, "hyperswarm_connects_attempted_total") or 0) >= 1
                    assert value(c, "hyperswarm_connects_opened_total", direction="client") == 1
                    assert (value(c, "hyperswarm_sent_bytes_total") or 0) > 50000
                    assert (value(c, "hyperdht_requests_sent_total", command="find_node") or 0) > 0
                    assert (value(c, "hyperdht_requests_sent_total", command="lookup") or 0) > 0
                    assert (value(c, "hyperdht_responses_received_total", command="lookup") or 0) > 0

            d = scrape_until(dht_url, lambda s: (value(s, "hyperdht_storage_records", kind="peer") or 0) >= 1, 20,
                             "a topic record stored on the DHT node")
            assert (value(d, "hyperdht_requests_received_total", command="find_node") or 0) > 0
            assert (value(d, "hyperdht_requests_received_total", command="announce") or 0) >= 1
            assert (value(d, "hyperdht_requests_received_total", command="lookup") or 0) >= 1
            assert (value(d, "hyperdht_responses_sent_total", command="announce") or 0) >= 1
            assert value(d, "hyperdht_firewalled") == 0
            assert value(d, "hyperdht_dropped_malformed_total") == 0
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.sendto(b"\xff", (listening["host"], listening["port"]))
            scrape_until(dht_url, lambda s: value(s, "hyperdht_dropped_malformed_total") == 1, 10,
                         "the malformed datagram counted")


def test_a_cluster_serves_node_restarts(tmp_path: Path) -> None:
    boot = free_port(socket.SOCK_DGRAM)
    config = tmp_path / "cluster.toml"
    config.write_text(f'[[dht]]\nname = "boot"\nport = {boot}\nbootstrap = []\n'
                      f'[[peer]]\nname = "p0"\nbootstrap = ["127.0.0.1:{boot}"]\ngroup = "00"\n')
    port = free_port(socket.SOCK_STREAM)
    cluster = Cluster(config, free_port(socket.SOCK_STREAM), tmp_path / "cluster.log",
                      extra=["--metrics-port", str(port)])
    try:
        url = cluster.started["metrics"]
        assert url == f"http://127.0.0.1:{port}/metrics"
        s = scrape(url)
        assert value(s, "hugin_cluster_nodes") == 2
        for node, kind in (("boot", "dht"), ("p0", "peer")):
            assert value(s, "hugin_cluster_node_up", node=node, kind=kind, system="") == 1
            assert value(s, "hugin_cluster_node_restarts_total", node=node, kind=kind, system="") == 0
        victim = next(n for n in cluster.started["nodes"] if n["name"] == "p0")
        os.kill(victim["pid"], signal.SIGKILL)
        scrape_until(url, lambda s: value(s, "hugin_cluster_node_restarts_total", node="p0", kind="peer",
                                          system="") == 1
                     and value(s, "hugin_cluster_node_up", node="p0", kind="peer", system="") == 1,
                     30, "p0 restarted")
    finally:
        cluster.stop()
