"""run_node.py cluster: node processes under a Thespian multiprocTCPBase system, restarted when
killed, inspected with `status`, driven through the actor system; nothing left behind."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

from hyperswarm_hugin.cluster import protocol as p
from hyperswarm_hugin.cluster.remote import RemoteError, RemoteSwarm, admin_is_listening
from tests.lines import JsonLineReader
from tests.ports import free_port
from tests.system.processes import ROOT

pytestmark = [pytest.mark.system, pytest.mark.timeout(150)]

GROUP = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"


def cluster_file(directory: Path, peers: int = 3, dhts: int = 3,
                 dht_ports: list[int] | None = None) -> tuple[Path, list[str]]:
    """A cluster file: DHT nodes boot0.. (boot0 bootstraps the rest; the others take any port
    unless ``dht_ports`` says), and peers of one group that all bootstrap from boot0."""
    ports = dht_ports or [free_port(socket.SOCK_DGRAM)] + [0] * (dhts - 1)
    boot = ports[0]
    lines = [f'data_dir = "{directory / "data"}"']
    for i in range(dhts):
        port = ports[i]
        bootstrap = "[]" if i == 0 else f'["127.0.0.1:{boot}"]'
        lines += ["[[dht]]", f'name = "boot{i}"', f"port = {port}", f"bootstrap = {bootstrap}"]
    names = [f"peer{i}" for i in range(peers)]
    for name in names:
        lines += ["[[peer]]", f'name = "{name}"', f"port = {free_port(socket.SOCK_DGRAM)}",
                  f'bootstrap = ["127.0.0.1:{boot}"]', f'group = "{GROUP}"']
    path = directory / "cluster.toml"
    path.write_text("\n".join(lines) + "\n")
    return path, names


def our_processes(marker: str) -> list[int]:
    """Pids of processes whose command line names ``marker`` (our cluster file): ours only."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmdline and int(entry.name) != os.getpid():
                found.append(int(entry.name))
    return found


class Cluster:
    """``run_node.py cluster``: with a config (a cluster), or ``member_of`` (a convention member whose
    system is named by ``marker``).  ``marker`` also finds its processes afterwards."""

    def __init__(self, config: Path | None, admin_port: int, log: Path, *, member_of: int | None = None,
                 marker: str | None = None, wait: bool = True, extra: list[str] | None = None) -> None:
        self.marker = marker or str(config)
        self.admin_port = admin_port
        self.stderr = log.open("w")
        args = ["--config", str(config)] if config else ["--system", self.marker,
                                                          "--convention", f"127.0.0.1:{member_of}"]
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "run_node.py"), "cluster", *args, "--admin-port", str(admin_port),
             "--timeout", "140", *(extra or [])], cwd=ROOT, stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        assert self.proc.stdout is not None
        self.lines = JsonLineReader(self.proc.stdout)
        if not wait:  # only until its admin port answers
            until(lambda: admin_is_listening(admin_port), 30, "the admin port")
            return
        started = self.lines.read(90)
        expected = "cluster" if config else "system"
        assert started is not None and started["event"] == expected, (started, log.read_text()[-2000:])
        self.started = started

    def stop(self) -> None:
        """SIGTERM (the launcher shuts the actor system down); whatever is left is ended by pid."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        end = time.monotonic() + 15  # the actor system's processes end shortly after the launcher
        while (leftovers := our_processes(self.marker)) and time.monotonic() < end:
            time.sleep(0.2)
        described = []
        for pid in leftovers:
            with contextlib.suppress(OSError):
                described.append(f"{pid} (parent {Path(f'/proc/{pid}/stat').read_text().split()[3]})")
            os.kill(pid, signal.SIGKILL)
        self.stderr.close()
        self.lines.close()
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        assert not leftovers, f"actor-system processes left after shutdown: {described} (launcher {self.proc.pid})"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    config, _ = cluster_file(tmp_path)
    running = Cluster(config, free_port(socket.SOCK_STREAM), tmp_path / "cluster.log")
    try:
        yield running
    finally:
        running.stop()


def until(check: Callable[[], Any], deadline: float, what: str) -> Any:
    end = time.monotonic() + deadline
    last: Any = None
    while time.monotonic() < end:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"{what} not reached in {deadline} s (last: {last})")


def status(cluster: Cluster) -> list[dict[str, Any]]:
    out = subprocess.run([sys.executable, str(ROOT / "run_node.py"), "status", "--admin-port",
                          str(cluster.admin_port), "--json"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rows: list[dict[str, Any]] = json.loads(out.stdout)
    return rows


def peers_meshed(rows: list[dict[str, Any]]) -> bool:
    """Every node runs, and every peer is connected to every other."""
    peers = [r for r in rows if r.get("kind") == "peer"]
    return all(r["running"] for r in rows) and bool(peers) and all(
        r.get("connections") == len(peers) - 1 for r in peers)


def test_peers_connect_and_a_killed_peer_comes_back_as_itself(cluster: Cluster) -> None:
    def meshed_on_a_joined_dht() -> list[dict[str, Any]] | None:
        rows = status(cluster)
        dht_joined = all(r.get("dht_size", 0) >= 1 for r in rows if r.get("kind") == "dht")
        return rows if peers_meshed(rows) and dht_joined else None

    before = {r["name"]: r for r in until(meshed_on_a_joined_dht, 30, "the 3-peer mesh on the DHT nodes")}
    assert len(before) == 6
    victim = before["peer1"]
    os.kill(victim["pid"], signal.SIGKILL)
    started = time.monotonic()

    def back() -> list[dict[str, Any]] | None:
        now = status(cluster)
        row = next(r for r in now if r["name"] == "peer1")
        return now if row["running"] and row.get("pid") not in (None, victim["pid"]) and peers_meshed(now) else None

    after = {r["name"]: r for r in until(back, 40, "peer1 restarted and the mesh whole again")}
    print(f"peer1 back and meshed {time.monotonic() - started:.1f} s after kill -9")
    assert after["peer1"]["public_key"] == victim["public_key"] and after["peer1"]["port"] == victim["port"]
    assert after["peer1"]["restarts"] >= 1


def test_bad_requests_get_an_error_reply_and_the_node_keeps_running(cluster: Cluster) -> None:
    remote = RemoteSwarm.connect(cluster.admin_port, "peer0")
    bad = [
        (b"\x93not-a-map", "not msgpack"),
        (p.encode({"type": "status", "id": 10, "node": "peer0"})[:-3], "not msgpack"),
        (b"\xa5hello", "a request is a msgpack map"),
        (p.encode({"type": "launch", "id": 1, "node": "peer0"}), "unknown request type"),
        (b"\x83\xa1v\x02\xa4type\xa6status\xa2id\x03", "unsupported version 2"),
        (p.encode({"type": "join", "id": 4, "node": "peer0"}), "needs the field 'topic'"),
        (p.encode({"type": "join", "id": 5, "node": "peer0", "topic": "x" * 32, "server": True, "client": True}),
         "join.topic must be bytes"),
        (p.encode({"type": "join", "id": 6, "node": "peer0", "topic": b"x" * 31, "server": True,
                   "client": True}), "a topic is 32 bytes"),
        (p.encode({"type": "write", "id": 7, "node": "peer0", "conn": 999, "data": b"x"}), "no connection 999"),
        (p.encode({"type": "status", "id": 8, "node": "nobody"}), "no node named 'nobody'"),
        (p.encode({"type": "status", "id": 9}), "needs the field 'node'"),
    ]
    for payload, message in bad:
        answer = remote.send_raw(payload)
        assert answer["type"] == "error", (payload, answer)
        if message is not None:
            assert message in answer["error"], (payload, answer)
    with pytest.raises(RemoteError, match="needs a swarm peer"):
        RemoteSwarm.connect(cluster.admin_port, "boot0").peers()
    assert remote.status()["name"] == "peer0"  # still running, still answering
    assert {r["name"] for r in status(cluster) if r["running"]} == {f"boot{i}" for i in range(3)} | {
        f"peer{i}" for i in range(3)}


def test_remote_swarm_joins_lists_peers_and_leaves(cluster: Cluster) -> None:
    until(lambda: peers_meshed(status(cluster)), 30, "the 3-peer mesh")
    remote = RemoteSwarm.connect(cluster.admin_port, "peer0")
    topic = os.urandom(32)
    remote.join(topic, server=True, client=False)
    assert topic in remote.status()["topics"]
    peers = remote.peers()
    assert len([x for x in peers if x["connected"]]) == 2
    remote.leave(topic)
    assert topic not in remote.status()["topics"]


def test_status_without_a_cluster_fails_clearly() -> None:
    port = free_port(socket.SOCK_STREAM)
    out = subprocess.run([sys.executable, str(ROOT / "run_node.py"), "status", "--admin-port", str(port)],
                         cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and f"no cluster is listening on admin port {port}" in out.stderr


def test_two_actor_systems_in_a_convention_host_one_cluster(tmp_path: Path) -> None:
    """A node placed on a second actor system (another admin port, joined to the first's
    convention) runs there and meshes with the node on the first: the path to several hosts."""
    boot = free_port(socket.SOCK_DGRAM)
    member_name = f"member-{os.getpid()}-{boot}"
    config = tmp_path / "cluster.toml"
    config.write_text(f'[[dht]]\nname = "boot"\nport = {boot}\nbootstrap = []\n'
                      f'[[peer]]\nname = "here"\nbootstrap = ["127.0.0.1:{boot}"]\ngroup = "{GROUP}"\n'
                      f'[[peer]]\nname = "there"\nbootstrap = ["127.0.0.1:{boot}"]\ngroup = "{GROUP}"\n'
                      f'system = "{member_name}"\n')
    leader_port = free_port(socket.SOCK_STREAM)
    leader = Cluster(config, leader_port, tmp_path / "leader.log", wait=False)  # "there" needs the member
    try:
        member = Cluster(None, free_port(socket.SOCK_STREAM), tmp_path / "member.log", member_of=leader_port,
                         marker=member_name)
        try:
            def placed() -> list[dict[str, Any]] | None:
                rows = status(leader)
                return rows if peers_meshed(rows) else None

            rows = {r["name"]: r for r in until(placed, 60, "the node on the second system, meshed")}
            assert rows["there"]["system"] == member_name and rows["here"]["system"] is None
            assert rows["there"]["pid"] in our_processes(member_name)  # it runs under the member system
        finally:
            leader.stop()
    finally:
        member.stop()


def test_keys_bans_and_a_routing_snapshot_survive_a_cluster_restart(tmp_path: Path) -> None:
    config, _ = cluster_file(tmp_path, peers=2, dhts=2)
    first = Cluster(config, free_port(socket.SOCK_STREAM), tmp_path / "first.log")
    try:
        until(lambda: peers_meshed(status(first)), 30, "the mesh")
        keys = {r["name"]: r["public_key"] for r in status(first) if r.get("kind") == "peer"}
        stranger = os.urandom(32)
        RemoteSwarm.connect(first.admin_port, "peer0").ban(stranger)
    finally:
        first.stop()
    saved = msgpack.unpackb((tmp_path / "data" / "peer0.msgpack").read_bytes(), raw=False)
    assert saved["bans"] == [stranger] and saved["routing"]  # the nodes it knew, to rejoin by
    second = Cluster(config, free_port(socket.SOCK_STREAM), tmp_path / "second.log")
    try:
        rows = until(lambda: (r := status(second)) and peers_meshed(r) and r, 30, "the mesh again")
        assert {r["name"]: r["public_key"] for r in rows if r.get("kind") == "peer"} == keys
        banned = [x for x in RemoteSwarm.connect(second.admin_port, "peer0").peers() if x["banned"]]
        assert [x["public_key"] for x in banned] == [stranger]
    finally:
        second.stop()


def test_a_restarted_peer_rejoins_from_its_routing_snapshot_when_its_bootstrap_node_is_gone(
        tmp_path: Path) -> None:
    ports = [free_port(socket.SOCK_DGRAM) for _ in range(3)]
    config, _ = cluster_file(tmp_path, peers=2, dhts=3, dht_ports=ports)
    first = Cluster(config, free_port(socket.SOCK_STREAM), tmp_path / "first.log")
    def meshed_knowing_every_dht_node() -> bool:
        rows = status(first)
        return peers_meshed(rows) and all(r["dht_size"] >= 3 for r in rows if r["kind"] == "peer")

    try:
        until(meshed_knowing_every_dht_node, 30, "the mesh, and peers whose tables hold the 3 DHT nodes")
    finally:
        first.stop()  # each node saves its state as it stops
    others = {f"127.0.0.1:{port}" for port in ports[1:]}
    for name in ("peer0", "peer1"):
        routing = msgpack.unpackb((tmp_path / "data" / f"{name}.msgpack").read_bytes(), raw=False)["routing"]
        assert others & set(routing), f"{name}'s snapshot knows neither boot1 nor boot2: {routing}"
    # boot0, the only node the peers are configured to bootstrap from, is not started again
    without_boot0 = config.read_text().replace(
        f'[[dht]]\nname = "boot0"\nport = {ports[0]}\nbootstrap = []\n', "")
    assert without_boot0 != config.read_text()
    config.write_text(without_boot0)
    began = time.monotonic()
    second = Cluster(config, free_port(socket.SOCK_STREAM), tmp_path / "second.log")
    try:
        rows = until(lambda: (r := status(second)) and peers_meshed(r) and r, 30, "the mesh through boot1/boot2")
        print(f"meshed again without boot0 {time.monotonic() - began:.1f} s after the launch")
        assert sorted(r["name"] for r in rows) == ["boot1", "boot2", "peer0", "peer1"]
    finally:
        second.stop()
