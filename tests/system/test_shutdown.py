"""SIGTERM, or Ctrl-C (SIGINT to the foreground process group), stops every run_node.py command
quickly, and no process of ours is left behind: neither in the command's own session nor (for
``cluster``) the actor system's admin and actor processes, which live in a session of their own."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.lines import JsonLineReader
from tests.ports import free_port
from tests.system.processes import ROOT

pytestmark = [pytest.mark.system, pytest.mark.timeout(90)]

LIMIT = 5.0
"""A stop slower than this fails (the aim is 2 s)."""

GROUP = "00" * 32


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for its parent to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def processes_of(session: int, marker: str) -> set[int]:
    """Live pids in ``session``, or whose command line holds ``marker`` (forked actor processes)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text().rpartition(")")[2].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if stat[0] != "Z" and (int(stat[3]) == session or marker in cmdline):
            found.add(int(entry.name))
    return found


class Command:
    """``run_node.py`` in a session of its own (so Ctrl-C can reach its whole process group)."""

    def __init__(self, *args: str, marker: str) -> None:
        self.marker = marker
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "run_node.py"), *args], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        assert self.proc.stdout is not None
        self.lines = JsonLineReader(self.proc.stdout)

    def wait_for(self, event: str, deadline: float = 60.0) -> dict[str, Any]:
        end = time.monotonic() + deadline
        while (left := end - time.monotonic()) > 0:
            found = self.lines.read(left)
            if found is None:
                break
            if found["event"] == event:
                return found
        raise AssertionError(f"no {event!r} line; stderr: {self.stderr_tail()}")

    def stderr_tail(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        assert self.proc.stderr is not None
        return self.proc.stderr.read()[-2000:]

    def ours(self) -> set[int]:
        return processes_of(self.proc.pid, self.marker)

    def kill_all(self) -> None:
        """End whatever of ours still runs (by pid), reap the command, close its pipes."""
        for pid in self.ours():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.lines.close()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@contextlib.contextmanager
def command(*args: str, marker: str = "\0none") -> Iterator[Command]:
    started = Command(*args, marker=marker)
    try:
        yield started
    finally:
        started.kill_all()


@pytest.fixture(scope="module")
def testnet() -> Iterator[str]:
    """A testnet for the peer and relay commands to bootstrap from."""
    with command("testnet", "--size", "3", "--timeout", "85") as net:
        yield str(net.wait_for("testnet", 30)["bootstrap"][0])


def stop_and_measure(cmd: Command, how: str) -> float:
    """Signal ``cmd`` as a user would; seconds until it and every process it started are gone."""
    before = cmd.ours()
    assert cmd.proc.pid in before
    began = time.monotonic()
    if how == "ctrl-c":
        os.killpg(cmd.proc.pid, signal.SIGINT)  # what a terminal does: the whole foreground group
    else:
        os.kill(cmd.proc.pid, signal.SIGTERM)
    end = began + LIMIT
    while (time.monotonic() < end) and (cmd.proc.poll() is None or any(alive(pid) for pid in before | cmd.ours())):
        time.sleep(0.02)
    took = time.monotonic() - began
    left = {pid for pid in before | cmd.ours() if alive(pid)}
    assert not left, f"still running {took:.1f} s after {how}: {sorted(left)} (command {cmd.proc.pid})"
    assert cmd.proc.returncode == 0, cmd.stderr_tail()
    print(f"{how}: stopped in {took:.2f} s ({len(before)} process(es))")
    return took


HOW = ["sigterm", "ctrl-c"]


@pytest.mark.parametrize("how", HOW)
def test_dht(how: str) -> None:
    with command("dht", "--bootstrap", "", "--timeout", "60") as node:
        node.wait_for("listening")
        assert stop_and_measure(node, how) < LIMIT
        assert node.wait_for("close", 1)


@pytest.mark.parametrize("how", HOW)
def test_testnet(how: str) -> None:
    with command("testnet", "--size", "5", "--timeout", "60") as net:
        net.wait_for("testnet")
        assert stop_and_measure(net, how) < LIMIT
        assert net.wait_for("close", 1)


@pytest.mark.parametrize("how", HOW)
def test_peer(how: str, testnet: str) -> None:
    with command("peer", "--bootstrap", testnet, "--group", GROUP, "--timeout", "60") as peer:
        peer.wait_for("ready")
        assert stop_and_measure(peer, how) < LIMIT
        assert peer.wait_for("stopped", 1)


def test_peer_whose_dht_is_gone() -> None:
    """Its topic record cannot be taken back: that courtesy is given up quickly."""
    with command("dht", "--bootstrap", "", "--timeout", "60") as boot:
        where = boot.wait_for("listening")
        with command("peer", "--bootstrap", f"{where['host']}:{where['port']}", "--group", GROUP,
                     "--timeout", "60") as peer:
            peer.wait_for("ready")
            stop_and_measure(boot, "sigterm")
            assert stop_and_measure(peer, "sigterm") < LIMIT


@pytest.mark.parametrize("how", HOW)
def test_relay(how: str, testnet: str) -> None:
    with command("relay", "--bootstrap", testnet, "--timeout", "60") as relay:
        relay.wait_for("relay")
        assert stop_and_measure(relay, how) < LIMIT
        assert relay.wait_for("stopped", 1)


@pytest.mark.parametrize("how", HOW)
def test_cluster(how: str, tmp_path: Path) -> None:
    """A DHT node and two peers, each a process of the actor system, all stopped together (the DHT
    node goes first, so the peers' records cannot be taken back: the slow case)."""
    boot = free_port(socket.SOCK_DGRAM)
    config = tmp_path / "cluster.toml"
    config.write_text(f'[[dht]]\nname = "boot"\nport = {boot}\nbootstrap = []\n' + "".join(
        f'[[peer]]\nname = "p{i}"\nbootstrap = ["127.0.0.1:{boot}"]\ngroup = "{GROUP}"\n' for i in range(2)))
    with command("cluster", "--config", str(config), "--admin-port", str(free_port(socket.SOCK_STREAM)),
                 "--timeout", "60", marker=str(config)) as cluster:
        started = cluster.wait_for("cluster")
        assert all(n["running"] for n in started["nodes"])
        assert len(cluster.ours()) >= 5  # the launcher, the admin, the supervisor and the 3 nodes
        assert stop_and_measure(cluster, how) < LIMIT
        assert cluster.wait_for("stopped", 1)
