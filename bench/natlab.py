#!/usr/bin/env python3
"""Time to connect through the NAT lab (tests/natlab, holepunch.md §5): every cell (server NAT /
client NAT) with every implementation pair (server<-client), N runs each, interleaved, in one lab
with a public DHT of 10 nodes.  Prints one table: median/min/max seconds from the client's start
to its connection, successes/N, the ratio of the median to the node<-node median of the same cell,
the connect errors a Node client reported before it connected (hyperswarm retried), and the first
one when a run failed.

Needs root, `ip`, `nft` (.ci/install) and Node 20.  Node cells only by default:

    .venv/bin/python bench/natlab.py [--runs 5] [--dht node|python]
        [--pairs node:node,node:python,python:node] [--cells consistent/consistent,random/random]
        [--server-host o1]   (the server on an open host of the public net: its NAT is then moot)
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.natlab.cells import IMPLS, CellResult, run_cell  # noqa: E402
from tests.natlab.lab import NAT_TYPES, NatLab, requirements_problem  # noqa: E402

CELLS = ["consistent/consistent", "consistent/random", "random/consistent", "fully-random/consistent",
         "random/random"]
EXPECTED_TO_FAIL = {"random/random"}
REFERENCE = ("node", "node")


def parse_pairs(text: str) -> list[tuple[str, str]]:
    pairs = []
    for item in text.split(","):
        server, client = item.split(":")
        for impl in (server, client):
            if impl not in IMPLS:
                raise SystemExit(f"unknown implementation {impl!r}; one of {IMPLS}")
        pairs.append((server, client))
    return pairs


def parse_cells(text: str) -> list[tuple[str, str]]:
    cells = []
    for item in text.split(","):
        server_nat, client_nat = item.split("/")
        for nat in (server_nat, client_nat):
            if nat not in NAT_TYPES:
                raise SystemExit(f"unknown NAT type {nat!r}; one of {sorted(NAT_TYPES)}")
        cells.append((server_nat, client_nat))
    return cells


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(results: dict[tuple[str, str, str, str], list[CellResult]], runs: int) -> list[list[str]]:
    medians: dict[tuple[str, str, str, str], float | None] = {}
    for key, found in results.items():
        times = [r.seconds for r in found if r.connected and r.seconds is not None]
        medians[key] = statistics.median(times) if times else None
    rows = [["cell (server/client NAT)", "pair (server<-client)", "median s", "min s", "max s", "node connect ms",
             "ok/N", "vs node<-node", "failed attempts before connecting", "failures"]]
    for (server_nat, client_nat, server, client), found in results.items():
        times = [r.seconds for r in found if r.connected and r.seconds is not None]
        connect_ms = [r.connect_seconds * 1000 for r in found if r.connect_seconds is not None]
        reference = medians.get((server_nat, client_nat, *REFERENCE))
        median = medians[(server_nat, client_nat, server, client)]
        ratio = f"x{median / reference:.2f}" if median is not None and reference else "-"
        failures = Counter(r.error_code or r.note or "?" for r in found if not r.connected)
        retried = Counter(code for r in found if r.connected for code in r.errors)
        rows.append([
            f"{server_nat}/{client_nat}", f"{server}<-{client}", fmt(median), fmt(min(times) if times else None),
            fmt(max(times) if times else None), fmt(statistics.median(connect_ms), 0) if connect_ms else "-",
            f"{len(times)}/{runs}", ratio, ", ".join(f"{code} x{n}" for code, n in retried.most_common()) or "-",
            ", ".join(f"{code} x{n}" for code, n in failures.most_common()) or "-",
        ])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dht", choices=["node", "python"], default="node", help="the public DHT's nodes")
    parser.add_argument("--pairs", default="node:node", help="server:client implementation pairs")
    parser.add_argument("--cells", default=",".join(CELLS), help="server_nat/client_nat, comma separated")
    parser.add_argument("--deadline", type=float, default=40.0, help="seconds a run may take to connect")
    parser.add_argument("--server-host", default="hA", help="hA (behind rA) or o1 (open, public)")
    parser.add_argument("--client-host", default="hB", help="hB (behind rB) or o1 (open, public)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    problem = requirements_problem()
    if problem:
        print(f"bench/natlab.py: {problem}", file=sys.stderr)
        return 2
    pairs = parse_pairs(args.pairs)
    cells = parse_cells(args.cells)
    results: dict[tuple[str, str, str, str], list[CellResult]] = {
        (s_nat, c_nat, s, c): [] for s_nat, c_nat in cells for s, c in pairs}
    runs_total = args.runs * len(results)
    started = time.monotonic()
    with NatLab(dht=args.dht, dht_size=10, open_hosts=1,
                timeout=runs_total * (args.deadline + 60) + 60) as lab:
        for run in range(args.runs):
            for (s_nat, c_nat, s, c), found in results.items():
                give_up = 2 if f"{s_nat}/{c_nat}" in EXPECTED_TO_FAIL else None
                result = run_cell(lab, s, c, s_nat, c_nat, deadline=args.deadline, give_up_after_errors=give_up,
                                  server_host=args.server_host, client_host=args.client_host)
                found.append(result)
                logging.info("run %d %s %s: connected=%s %s s %s", run + 1, result.cell, result.pair,
                             result.connected, fmt(result.seconds), result.error_code or result.note)
    rows = table(results, args.runs)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(f"NAT lab, {args.dht} DHT of 10 nodes, server in {args.server_host}, client in {args.client_host},"
          f" {args.runs} runs per row, {time.monotonic() - started:.0f} s"
          f" (expected to fail: {', '.join(sorted(EXPECTED_TO_FAIL))})")
    for i, row in enumerate(rows):
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
