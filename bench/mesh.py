#!/usr/bin/env python3
"""Mesh formation: N peers join one topic at the same moment; how many of the N(N-1)/2 pairs are
connected (both ends see the connection) after 2, 5, 10 and 15 s — Node hyperswarm-hugin and
our Hyperswarm, each on its own fresh 5-node Node testnet, one after the other.

Node peers are one process each (tests/interop/node/swarm_peer.js), told to join at one wall
clock time; Python peers all live in this process and join in one loop iteration.

    .venv/bin/python bench/mesh.py [--peers 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hyperswarm_hugin import GroupKey, Hyperswarm  # noqa: E402
from tests.interop.stdio_node import StdioNode  # noqa: E402

MARKS = (2.0, 5.0, 10.0, 15.0)
GROUP_SEED = os.urandom(32)
GROUP = GroupKey.from_seed(GROUP_SEED)


def node_testnet() -> tuple[StdioNode, list[str]]:
    js = StdioNode("dht_network.js", "--nodes", "5", "--timeout", "120")
    ready = js.read(60)
    return js, ready["bootstrap"]


def pairs_of(links: dict[bytes, set[bytes]]) -> int:
    return sum(1 for a, peers in links.items() for b in peers if a < b and a in links.get(b, set()))


def run_node(n: int) -> tuple[list[int], float | None]:
    net, bootstrap = node_testnet()
    start_at = int((time.time() + 4 + 0.25 * n) * 1000)
    peers = [StdioNode("swarm_peer.js", "--bootstrap", ",".join(bootstrap), "--seed", os.urandom(32).hex(),
                       "--group", GROUP_SEED.hex(), "--topic", GROUP.topic.hex(), "--timeout", "90",
                       "--start-at", str(start_at)) for _ in range(n)]
    try:
        keys: list[bytes | None] = [None] * n
        links: dict[bytes, set[bytes]] = {}
        open_count: dict[bytes, Counter[bytes]] = {}  # a peer may briefly hold two connections to one key
        counts: list[int] = []
        full: float | None = None
        begin = start_at / 1000
        while time.time() < begin:
            time.sleep(0.05)
        for mark in MARKS:
            while time.time() < begin + mark:
                for i, js in enumerate(peers):
                    for line in js.ready_lines():
                        if line["event"] == "ready":
                            keys[i] = bytes.fromhex(line["publicKey"])
                            links.setdefault(keys[i], set())
                        elif line["event"] in ("connection", "close") and keys[i] is not None:
                            remote = bytes.fromhex(line["remotePublicKey"])
                            counts_of = open_count.setdefault(keys[i], Counter())  # type: ignore[arg-type]
                            counts_of[remote] += 1 if line["event"] == "connection" else -1
                            links[keys[i]] = {r for r, n in counts_of.items() if n > 0}  # type: ignore[index]
                if full is None and pairs_of(links) == n * (n - 1) // 2:
                    full = time.time() - begin
                time.sleep(0.1)
            counts.append(pairs_of(links))
        return counts, full
    finally:
        for js in peers:
            js.close()
        net.close()


async def run_python(n: int) -> tuple[list[int], float | None]:
    net, bootstrap = node_testnet()
    swarms = [Hyperswarm(group=GROUP, bootstrap=bootstrap) for _ in range(n)]
    try:
        for s in swarms:
            await s.start()
        begin = time.monotonic()
        for s in swarms:
            s.join(GROUP.topic)
        counts: list[int] = []
        full: float | None = None
        for mark in MARKS:
            while time.monotonic() < begin + mark:
                have = {(s.key_pair.public_key, c.remote_public_key) for s in swarms for c in s.connections}
                links: dict[bytes, set[bytes]] = {}
                for a, b in have:
                    links.setdefault(a, set()).add(b)
                if full is None and pairs_of(links) == n * (n - 1) // 2:
                    full = time.monotonic() - begin
                await asyncio.sleep(0.1)
            have = {(s.key_pair.public_key, c.remote_public_key) for s in swarms for c in s.connections}
            links = {}
            for a, b in have:
                links.setdefault(a, set()).add(b)
            counts.append(pairs_of(links))
        queries = max(s.stats["topic_queries"] for s in swarms)
        print(f"  (python: at most {queries} topic queries per peer in {MARKS[-1]:.0f} s)")
        return counts, full
    finally:
        for s in swarms:
            await s.destroy()
        net.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", type=int, default=30)
    args = parser.parse_args()
    if shutil.which("node") is None:
        print("bench/mesh.py needs node (Node 20) on PATH", file=sys.stderr)
        return 1
    n = args.peers
    node_version = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    print(f"mesh formation, {n} peers joining one topic at once ({n * (n - 1) // 2} pairs); "
          f"python {platform.python_version()}, node {node_version}")
    rows = [("node hyperswarm-hugin", *run_node(n)), ("python Hyperswarm", *asyncio.run(run_python(n)))]
    header = f"| {n} peers | " + " | ".join(f"pairs @ {m:.0f} s" for m in MARKS) + " | full mesh at |"
    print(header)
    print("|" + "---|" * (len(MARKS) + 2))
    for name, counts, full in rows:
        when = f"{full:.1f} s" if full is not None else f"not in {MARKS[-1]:.0f} s"
        print(f"| {name} | " + " | ".join(str(c) for c in counts) + f" | {when} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
