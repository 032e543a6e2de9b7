#!/usr/bin/env python3
"""Join → first connection, many times: a fresh Python client process (run_node.py peer) and a
fresh Node client process (tests/interop/node/swarm_peer.js) take turns connecting to one Node
hyperswarm-hugin server on a Node hyperdht testnet; each reports its ``connectMs`` (the swarm's
connect call → the connection event), and the medians are printed with their ratio.  As in
bench/all.py each client meets a fresh server (whose first handshake is slower than its later
ones); ``--warm-server`` keeps one server for every client instead.

This is bench/all.py's "join" figure on its own (all.py takes ``--join-rounds`` per repeat): one
first connection of a fresh process swings by a millisecond or two, so take many.

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

from bench.all import JOIN_CLIENTS, Child, join_samples  # noqa: E402


def baseline_peer(root: Path, bootstrap: str, group: str) -> Child:
    """A client of the checkout at ``root`` (its own hyperswarm_hugin: run_node.py's directory is
    first on its sys.path)."""
    return Child([sys.executable, str(root / "run_node.py"), "peer", "--bootstrap", bootstrap, "--group", group,
                  "--role", "client", "--mode", "idle", "--timeout", "300"], cwd=root)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--warm-server", action="store_true", help="one server for every client")
    parser.add_argument("--baseline", type=Path, help="another checkout's run_node.py, in every round too")
    args = parser.parse_args()
    os.environ["HYPERSWARM_HUGIN_LOOP"] = args.loop
    clients = dict(JOIN_CLIENTS)
    if args.baseline:
        baseline: Path = args.baseline
        clients["baseline"] = lambda bootstrap, group: baseline_peer(baseline, bootstrap, group)
    impls = list(clients)
    samples = join_samples(args.rounds, clients, warm_server=args.warm_server)
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
