#!/usr/bin/env python3
"""Join → first connection, many times: a fresh Python client process (run_node.py peer) and a
fresh Node client process (tests/interop/node/swarm_peer.js) take turns connecting to one Node
hyperswarm-hugin server on a Node hyperdht testnet; each reports its ``connectMs`` (the swarm's
connect call → the connection event), and the medians are printed with their ratio.  As in
bench/all.py each client meets a fresh server (whose first handshake is slower than its later
ones); ``--warm-server`` keeps one server for every client instead.

This is bench/all.py's "join" figure with more samples: all.py takes one per repeat, and one
first connection of a fresh process swings by a millisecond or two.

    .venv/bin/python bench/connect.py [--rounds 15] [--loop asyncio|uvloop] [--warm-server]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.all import INTEROP, Child, node_bin, node_peer, python_peer  # noqa: E402


def baseline_peer(root: Path, bootstrap: str, group: str) -> Child:
    """A client of the checkout at ``root`` (its own hyperswarm_hugin: run_node.py's directory is
    first on its sys.path)."""
    return Child([sys.executable, str(root / "run_node.py"), "peer", "--bootstrap", bootstrap, "--group", group,
                  "--role", "client", "--mode", "idle", "--timeout", "300"], cwd=root)


def first_connection(child: Child) -> float:
    line = child.wait("connection", 60)
    if line.get("connectMs") is None:
        raise RuntimeError(f"no connectMs in {line}")
    return float(line["connectMs"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--warm-server", action="store_true", help="one server for every client")
    parser.add_argument("--baseline", type=Path, help="another checkout's run_node.py, in every round too")
    args = parser.parse_args()
    os.environ["HYPERSWARM_HUGIN_LOOP"] = args.loop
    impls = ["python", "node"] + (["baseline"] if args.baseline else [])
    samples: dict[str, list[float]] = {impl: [] for impl in impls}
    testnet = Child([node_bin(), str(INTEROP / "node" / "dht_network.js"), "--nodes", "5", "--timeout", "900"],
                    cwd=INTEROP)
    try:
        bootstrap = ",".join(testnet.wait("ready", 120)["bootstrap"])
        server: Child | None = None
        group = ""
        try:
            for _ in range(args.rounds):
                for impl in impls:
                    if server is None or not args.warm_server:
                        if server is not None:
                            server.stop()
                        group = os.urandom(32).hex()
                        server = node_peer(bootstrap, group, "server", "echo")
                        server.wait("ready", 60)
                    if impl == "python":
                        client = python_peer(bootstrap, group, "client", "idle")
                    elif impl == "node":
                        client = node_peer(bootstrap, group, "client", "sink")
                    else:
                        client = baseline_peer(args.baseline, bootstrap, group)
                    try:
                        samples[impl].append(first_connection(client))
                    finally:
                        client.stop()
        finally:
            if server is not None:
                server.stop()
    finally:
        testnet.stop()
    py, js = statistics.median(samples["python"]), statistics.median(samples["node"])
    for impl in impls:
        print(f"{impl:8} connectMs: median {statistics.median(samples[impl]):.2f}, "
              f"min {min(samples[impl]):.2f}, max {max(samples[impl]):.2f}, "
              f"all {' '.join(f'{v:.2f}' for v in samples[impl])}")
    print(f"ratio Python / Node: {py / js:.2f} ({args.rounds} rounds, Python loop {args.loop}, "
          f"{'one warm server' if args.warm_server else 'a fresh server each'})")
    if args.baseline:
        print(f"ratio baseline / Node: {statistics.median(samples['baseline']) / js:.2f} ({args.baseline})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
