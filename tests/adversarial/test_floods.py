"""Hostile input at a live node, from an attacker process (tests/adversarial/flooder.py).

For every case: the node stays up (answers a ping, no actor failure, no datagram error), a
member that arrives during the flood and one right after it connect within
:data:`SLOWDOWN_BOUND` seconds of the unflooded time, and the process's RSS grows by less than
:data:`RSS_BOUND`.  Each case prints its figures (run with ``-s`` to see them).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hyperswarm_hugin import DHT, GroupKey, Hyperswarm, KeyPair, Testnet, peer_connect
from hyperswarm_hugin.peer_connect import connect
from tests.system.udp_probe import UdpProbe

pytestmark = [pytest.mark.system, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
GROUP_SEED = b"adversarial room".ljust(32, b".")
GROUP = GroupKey.from_seed(GROUP_SEED)
SLOWDOWN_BOUND = 2.0
"""Seconds a member may take beyond its unflooded connect time, during or right after a flood."""
QUERY_BOUND = 5.0
"""Seconds a query of the node's own may take right after a flood (its DHT work is not starved)."""
RSS_BOUND = 64 * 1024 * 1024
"""Bytes the process (the node, its testnet and the member) may grow by over one flood."""

CASES: dict[str, dict[str, Any]] = {
    "valid-mid-direct": {"kind": "handshakes", "mode": "direct", "mid": "valid", "hosts": 20, "count": 3000,
                         "rate": 1000},
    "valid-mid-relayed (half-open)": {"kind": "handshakes", "mode": "relayed", "mid": "valid", "hosts": 20,
                                      "count": 3000, "rate": 1000},
    "valid-mid-relayed at a firewalled server (punchers)": {
        "kind": "handshakes", "mode": "relayed", "mid": "valid", "hosts": 20, "count": 3000, "rate": 1000,
        "firewalled": True},
    "bad-mid-direct": {"kind": "handshakes", "mode": "direct", "mid": "bad", "hosts": 20, "count": 3000,
                       "rate": 1000},
    "bad-mid-relayed": {"kind": "handshakes", "mode": "relayed", "mid": "bad", "hosts": 20, "count": 3000,
                        "rate": 1000},
    "garbage-noise-relayed": {"kind": "handshakes", "mode": "relayed", "mid": "garbage", "hosts": 50,
                              "count": 10000, "rate": 3000},
    "udx-far-ahead": {"kind": "udx", "order": "far-ahead", "count": 20000, "rate": 5000},
    "udx-in-window": {"kind": "udx", "order": "in-window", "count": 20000, "rate": 5000},
    "udx-duplicate": {"kind": "udx", "order": "duplicate", "count": 20000, "rate": 5000},
    "random-and-mutated": {"kind": "random", "count": 20000, "rate": 5000},
    "truncated-and-oversized-fields": {"kind": "fields", "rate": 3000},
}


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class Flooder:
    """The attacker process; its JSON lines are read with deadlines."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, options: dict[str, Any]) -> Flooder:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.adversarial.flooder", json.dumps(options), cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        return cls(proc)

    async def wait_for(self, event: str, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while line := await self.proc.stdout.readline():
                msg: dict[str, Any] = json.loads(line)
                if msg["event"] == event:
                    return msg
        assert self.proc.stderr is not None
        raise AssertionError(f"the flooder ended before {event!r}: {(await self.proc.stderr.read()).decode()}")

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()


async def member_connects(member: DHT, server_key: bytes) -> float:
    start = time.monotonic()
    conn = await asyncio.wait_for(connect(member.runtime, KeyPair.random(), server_key, group=GROUP), 30)
    took = time.monotonic() - start
    await conn.close()
    return took


async def received(runtime: Any) -> int:
    """Datagrams the node has taken in: for its DHT and for its UDX streams."""
    status = await runtime.status()
    return int(status.stats["received"]) + int(runtime.streams.packets_in)


async def flood(case: str) -> None:
    options = dict(CASES[case])
    firewalled = options.pop("firewalled", False)
    async with await Testnet.create(4) as net, \
            DHT(bootstrap=net.bootstrap, mode="ephemeral" if firewalled else "persistent",
                quick_firewall=not firewalled) as node, \
            Hyperswarm(group=GROUP, dht=node) as swarm, DHT(bootstrap=net.bootstrap) as member:
        await node.ready(10)
        await member.ready(10)
        await swarm.listen()
        server = swarm._server
        assert server is not None
        runtime = swarm._dht.runtime
        key = server.key_pair.public_key
        assert (server._public is None) == firewalled
        unflooded = statistics.median([await member_connects(member, key) for _ in range(3)])
        options.update(to=list(runtime.server_address), server_key=key.hex(), group_seed=GROUP_SEED.hex())
        rss_before = rss()
        received_before = await received(runtime)
        flooder = await Flooder.start(options)
        try:
            started = await flooder.wait_for("started", 60)
            # The member arrives once a third of the flood reached the node.
            end = time.monotonic() + 60
            while await received(runtime) - received_before < started["datagrams"] // 3:
                assert time.monotonic() < end, "the flood did not reach the node"
                await asyncio.sleep(0.05)
            during = await member_connects(member, key)
            done = await flooder.wait_for("done", 120)
        finally:
            await flooder.stop()
        after = await member_connects(member, key)
        grown = rss() - rss_before
        probe = await UdpProbe.open()
        try:
            await probe.ping(runtime.server_address, tid=1)  # still up
        finally:
            probe.close()
        start = time.monotonic()
        await asyncio.wait_for(runtime.find_node(os.urandom(32)), QUERY_BOUND)  # our own DHT work still runs
        own_query = time.monotonic() - start
        status = await runtime.status()
        streams = len(runtime.streams.streams)
        sockets = len(runtime._endpoints)
        print(f"\n{case}: {done['sent']} datagrams ({done['bytes']} bytes) in {done['seconds']} s; member "
              f"connects in {unflooded * 1000:.0f} ms unflooded, {during * 1000:.0f} ms during, "
              f"{after * 1000:.0f} ms after; RSS +{grown / 2**20:.1f} MiB; refused {server.stats.refused}; "
              f"accepted {server.stats.accepted}, never started {server.stats.never_started}; "
              f"streams now {streams} holding {runtime.streams.held_bytes()} bytes, sockets {sockets}; "
              f"malformed {status.stats.get('dropped_malformed')}; our own query took {own_query * 1000:.0f} ms "
              f"(requests deferred so far {status.stats.get('deferred')})")
        assert started["datagrams"] == done["sent"] > 0
        assert runtime.actor_failures == 0
        assert status.stats["datagram_errors"] == 0
        assert during <= unflooded + SLOWDOWN_BOUND
        assert after <= unflooded + SLOWDOWN_BOUND
        assert grown < RSS_BOUND
        assert sockets <= 2 + peer_connect.MAX_UNSTARTED


@pytest.mark.parametrize("case", list(CASES))
def test_flood(case: str) -> None:
    asyncio.run(flood(case))
