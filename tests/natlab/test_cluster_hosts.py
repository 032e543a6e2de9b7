"""A cluster over three hosts: network namespaces o1, o2, o3 of the lab, each its own IP on the
public net (no NAT, no shared loopback), and a DHT of Python nodes on inet.  The leader's actor
system runs on o1, members on o2 and o3 join its convention by address, and the cluster file
places one peer on each system by name.  A whole host's system killed -9 leaves the others'
nodes running; back again, its node is restarted with the same key and the mesh is whole."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.natlab.conftest import require_lab
from tests.natlab.lab import ROOT, LabProcess, NatLab, run

pytestmark = [pytest.mark.natlab, pytest.mark.timeout(300)]

ADMIN_PORT = 1900  # every host has its own address, so every system can use the same admin port
GROUP = "42" * 32
HOSTS = {"a": "o1", "b": "o2", "c": "o3"}  # system name -> lab host


@pytest.fixture
def lab() -> Iterator[NatLab]:
    require_lab()
    with NatLab(dht="python", dht_size=3, open_hosts=3, timeout=280) as built:
        yield built


def in_host(lab: NatLab, host: str, *args: str, timeout: float = 60) -> str:
    """Run a Python command inside lab host ``host`` to completion; its stdout."""
    done = subprocess.run(["ip", "netns", "exec", lab.ns(host), sys.executable, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{args} in {host} failed: {done.stderr[-2000:]}"
    return done.stdout


def status(lab: NatLab, host: str = "o1", *extra: str) -> Any:
    return json.loads(in_host(lab, host, str(ROOT / "run_node.py"), "status", "--admin-port", str(ADMIN_PORT),
                              "--host", lab.ip[host], "--json", *extra))


def until(check: Callable[[], Any], deadline: float, what: str) -> Any:
    end = time.monotonic() + deadline
    last: Any = None
    while time.monotonic() < end:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"{what} not reached in {deadline} s (last: {last})")


def meshed(rows: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    ok = all(r["running"] for r in rows) and all(r.get("connections") == len(rows) - 1 for r in rows)
    return rows if ok else None


def member(lab: NatLab, system: str) -> LabProcess:
    host = HOSTS[system]
    process = lab.python(host, "cluster", "--system", system, "--convention", f"{lab.ip['o1']}:{ADMIN_PORT}",
                         "--host", lab.ip[host], "--admin-port", str(ADMIN_PORT), "--timeout", "270")
    started = process.wait_for("system", 60)
    assert started["host"] == lab.ip[host]
    return process


def kill_host(lab: NatLab, host: str) -> list[int]:
    """kill -9 every process inside lab host ``host`` (the launcher, Thespian's admin, its logger,
    the node actors): the host as a power cut would leave it."""
    pids = [int(p) for p in run("ip", "netns", "pids", lab.ns(host)).split()]
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    until(lambda: not run("ip", "netns", "pids", lab.ns(host)).split(), 10, f"every process of {host} gone")
    return pids


def test_a_cluster_over_three_hosts_survives_one_host_dying(lab: NatLab, tmp_path: Path) -> None:
    config = tmp_path / "cluster.toml"
    bootstrap = ", ".join(f'"{b}"' for b in lab.bootstrap)
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n' + "".join(
        f'[[peer]]\nname = "p{i}"\nsystem = "{system}"\nbootstrap = [{bootstrap}]\ngroup = "{GROUP}"\n'
        for i, system in enumerate(HOSTS)))
    leader = lab.python("o1", "cluster", "--config", str(config), "--system", "a", "--host", lab.ip["o1"],
                        "--admin-port", str(ADMIN_PORT), "--timeout", "270")
    # Members register with the leader when they start (and again only minutes later): leader first.
    probe = f"import socket; socket.create_connection(({lab.ip['o1']!r}, {ADMIN_PORT}), 1).close()"
    until(lambda: subprocess.run(["ip", "netns", "exec", lab.ns("o1"), sys.executable, "-c", probe],
                                 capture_output=True, timeout=10, check=False).returncode == 0,
          30, "the leader's admin port")
    members = {system: member(lab, system) for system in ("b", "c")}
    started = leader.wait_for("cluster", 90)
    assert all(n["running"] for n in started["nodes"]), started

    rows = {r["name"]: r for r in until(lambda: meshed(status(lab)), 60, "the mesh over three hosts")}
    assert {r["host"] for r in rows.values()} == {lab.ip[h] for h in HOSTS.values()}
    assert {(r["name"], r["system"], r["host"]) for r in rows.values()} == {
        (f"p{i}", system, lab.ip[HOSTS[system]]) for i, system in enumerate(HOSTS)}
    systems = {s["name"]: s for s in status(lab, "o1", "--systems")}
    assert {name: (s["host"], s["up"]) for name, s in systems.items()} == {
        name: (lab.ip[host], True) for name, host in HOSTS.items()}

    # RemoteSwarm from a third host (o3: neither the leader's host nor p1's): drive p1 on o2.
    code = ("import json, os\n"
            "from hyperswarm_hugin.cluster.remote import RemoteSwarm\n"
            f"r = RemoteSwarm.connect({ADMIN_PORT}, 'p1', host={lab.ip['o3']!r})\n"
            "topic = os.urandom(32)\n"
            "r.join(topic, server=True, client=False)\n"
            "joined = topic in r.status()['topics']\n"
            "r.leave(topic)\n"
            "print(json.dumps({'joined': joined, 'left': topic not in r.status()['topics'],"
            " 'host': r.status()['host'], 'connected': sum(p['connected'] for p in r.peers())}))\n")
    assert json.loads(in_host(lab, "o3", "-c", code)) == {"joined": True, "left": True, "host": lab.ip["o2"],
                                                          "connected": 2}

    # o2 dies whole: the nodes on o1 and o3 keep running (the same processes), connected to each other.
    victim = rows["p1"]
    killed = kill_host(lab, "o2")
    began = time.monotonic()
    assert victim["pid"] in killed
    lab.stop_process(members.pop("b"), grace=0)  # reaped, its pipes closed

    def others_running_p1_noticed() -> dict[str, dict[str, Any]] | None:
        now = {r["name"]: r for r in status(lab)}
        ok = (not now["p1"]["running"] and all(now[n]["running"] and now[n]["pid"] == rows[n]["pid"]
                                               for n in ("p0", "p2")))
        return now if ok else None

    until(others_running_p1_noticed, 40, "p1's host seen gone, p0 and p2 running as before")
    print(f"p1's death noticed {time.monotonic() - began:.1f} s after kill -9 of o2")
    until(lambda: all(r["connections"] == 1 for r in status(lab) if r["name"] != "p1"), 60,
          "p0 and p2 connected to each other only")

    # o2's system comes back: p1 is started there again with the same key, and the mesh is whole.
    members["b"] = member(lab, "b")
    began = time.monotonic()
    try:
        back = {r["name"]: r for r in until(lambda: meshed(status(lab)), 120, "p1 back and the mesh whole")}
    except AssertionError as exc:
        raise AssertionError(f"{exc}; status {status(lab)}; leader: {leader.stderr_tail()}; "
                             f"b: {members['b'].stderr_tail()}") from None
    print(f"p1 back on o2 and the mesh whole {time.monotonic() - began:.1f} s after o2's system restarted")
    assert back["p1"]["public_key"] == victim["public_key"] and back["p1"]["pid"] != victim["pid"]
    assert back["p1"]["host"] == lab.ip["o2"] and back["p1"]["restarts"] >= 1
    assert all(back[n]["pid"] == rows[n]["pid"] for n in ("p0", "p2"))
