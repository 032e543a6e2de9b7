"""RemoteSwarm from this (separate) process drives a cluster node that a Node hyperswarm-hugin
peer connects to: join, the connection event, data both ways, leave."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest

from hyperswarm_hugin import GroupKey
from hyperswarm_hugin.cluster.remote import RemoteSwarm
from tests.interop.stdio_node import StdioNode
from tests.ports import free_port
from tests.system.test_cluster import Cluster

pytestmark = [pytest.mark.interop, pytest.mark.timeout(150)]


def test_remote_swarm_exchanges_data_with_a_node_hyperswarm_hugin_peer(tmp_path: Path) -> None:
    group_seed = os.urandom(32)
    topic = GroupKey.from_seed(group_seed).topic
    boot = free_port(socket.SOCK_DGRAM)
    config = tmp_path / "cluster.toml"
    config.write_text(f'[[dht]]\nname = "boot"\nport = {boot}\nbootstrap = []\n'
                      f'[[dht]]\nname = "dht2"\nbootstrap = ["127.0.0.1:{boot}"]\n'
                      f'[[dht]]\nname = "dht3"\nbootstrap = ["127.0.0.1:{boot}"]\n'
                      f'[[peer]]\nname = "alice"\nbootstrap = ["127.0.0.1:{boot}"]\ngroup = "{group_seed.hex()}"\n'
                      f'topics = ["{os.urandom(32).hex()}"]\n')
    cluster = Cluster(config, free_port(socket.SOCK_STREAM), tmp_path / "cluster.log")
    try:
        remote = RemoteSwarm.connect(cluster.admin_port, "alice")
        remote.subscribe()
        remote.join(topic, server=True, client=True)
        with StdioNode("swarm_peer.js", "--bootstrap", f"127.0.0.1:{boot}", "--seed", os.urandom(32).hex(),
                       "--group", group_seed.hex(), "--topic", topic.hex(), "--timeout", "100") as js:
            node_key = bytes.fromhex(js.read(30)["publicKey"])
            connection = next_event(remote, "connection")
            assert connection["remote_public_key"] == node_key and connection["node"] == "alice"
            conn = connection["conn"]
            remote.write(conn, b"hello from the cluster")
            echoed = next_event(remote, "data")  # the Node peer echoes
            assert echoed["conn"] == conn and echoed["data"] == b"hello from the cluster"
            assert any(p["public_key"] == node_key and p["connected"] for p in remote.peers())
            remote.leave(topic)
            assert topic not in remote.status()["topics"]
    finally:
        cluster.stop()


def next_event(remote: RemoteSwarm, name: str) -> dict[str, Any]:
    for event in remote.events(timeout=30):
        if event["event"] == name:
            return event
    raise AssertionError(f"no {name} event in 30 s")
