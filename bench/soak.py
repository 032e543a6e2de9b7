#!/usr/bin/env python3
"""Soak: N Python peers on one topic with churn for M minutes; what the process holds over time.

Every ``--churn`` seconds one peer (chosen at random) is destroyed and a fresh one joins in its
place; every connection carries a small message each second (echoed back).  Every ``--every``
seconds a row is printed: RSS, open UDX streams, asyncio tasks, live actors (and dead entries in
Thespian's registries), connections, and how many peers have churned.  After warm-up the
columns should stay flat.  The defaults fit in five minutes.

    .venv/bin/python bench/soak.py [--peers 8] [--minutes 4] [--churn 10] [--every 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hyperswarm_hugin import Connection, GroupKey, Hyperswarm, PeerInfo, Testnet  # noqa: E402

log = logging.getLogger("soak")

GROUP = GroupKey.from_seed(b"soak room".ljust(32, b"."))


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def actors(runtimes: list[Any]) -> tuple[int, int]:
    """(live actors, dead entries) over the actor systems of ``runtimes``."""
    live = dead = 0
    for runtime in runtimes:
        system = getattr(runtime.system, "_systemBase", None)
        registry = getattr(system, "actorRegistry", {}) if system is not None else {}
        for ref in registry.values():
            if ref is None:
                dead += 1
            else:
                live += 1
    return live, dead


class Peer:
    def __init__(self, net: Testnet) -> None:
        self.swarm = Hyperswarm(group=GROUP, bootstrap=net.bootstrap, backoffs=(0.5, 1.0, 2.0, 30.0))
        self.echoes: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.swarm.on("connection", self._on_connection)
        await self.swarm.start()
        self.swarm.join(GROUP.topic)

    def _on_connection(self, conn: Connection, info: PeerInfo) -> None:
        task = asyncio.get_running_loop().create_task(self._echo(conn))
        self.echoes.add(task)
        task.add_done_callback(self.echoes.discard)

    @staticmethod
    async def _echo(conn: Connection) -> None:
        with contextlib.suppress(ConnectionError):
            async for message in conn:
                if message.startswith(b"ping"):
                    conn.write(b"pong" + message[4:])

    async def close(self) -> None:
        await self.swarm.destroy()
        for task in list(self.echoes):
            task.cancel()
        await asyncio.gather(*self.echoes, return_exceptions=True)


async def soak(peers: int, minutes: float, churn: float, every: float, seed: int) -> None:
    rng = random.Random(seed)
    async with await Testnet.create(5) as net:
        swarms = [Peer(net) for _ in range(peers)]
        for peer in swarms:
            await peer.start()
        start = time.monotonic()
        next_churn = start + churn
        next_row = start
        churned = 0
        print(f"{'s':>5} {'RSS MiB':>8} {'streams':>8} {'tasks':>6} {'actors':>7} {'dead':>6} {'conns':>6} "
              f"{'churned':>8}")
        while (now := time.monotonic()) < start + minutes * 60:
            for peer in swarms:  # traffic: a ping on every connection
                for conn in list(peer.swarm.connections):
                    with contextlib.suppress(ConnectionError):
                        conn.write(b"ping" + rng.randbytes(32))
            if now >= next_churn:
                index = rng.randrange(len(swarms))
                await swarms[index].close()
                swarms[index] = Peer(net)
                await swarms[index].start()
                churned += 1
                next_churn = now + churn
            if now >= next_row:
                runtimes = [p.swarm._dht.runtime for p in swarms] + [n.runtime for n in net.nodes]
                streams = sum(len(r.streams.streams) for r in runtimes)
                live, dead = actors(runtimes)
                conns = sum(len(p.swarm.connections) for p in swarms)
                print(f"{now - start:5.0f} {rss_mib():8.1f} {streams:8d} {len(asyncio.all_tasks()):6d} "
                      f"{live:7d} {dead:6d} {conns:6d} {churned:8d}", flush=True)
                next_row = now + every
            await asyncio.sleep(1.0)  # the soak's own pace: one round of traffic a second
        for peer in swarms:
            await peer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--churn", type=float, default=10.0, help="seconds between replacing a peer")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between rows")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(soak(args.peers, args.minutes, args.churn, args.every, args.seed))


if __name__ == "__main__":
    main()
