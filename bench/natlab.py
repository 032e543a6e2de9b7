#!/usr/bin/env python3
"""Time to connect through the NAT lab (tests/natlab, holepunch.md §5): every cell (server NAT /
client NAT) with every implementation pair (server<-client), N runs each, interleaved, in one lab
with a public DHT of 10 nodes.  Prints one table: median/min/max seconds from the client's start
to its connection, the client's own connect time (its dial call to the open connection, the one
that worked; process start-up left out), successes/N, the ratios of both medians to node<-node's,
the connect errors a Node client reported before it connected (hyperswarm retried), and the first
one when a run failed.

Needs root, `ip`, `nft` (.ci/install) and Node 20.  Node cells only by default:

    .venv/bin/python bench/natlab.py [--runs 5] [--dht node|python]
        [--pairs node:node,node:python,python:node] [--cells consistent/consistent,random/random]
        [--server-host o1]   (the server on an open host of the public net: its NAT is then moot)
        [--split]            (cells with one RANDOM NAT: packet captures on hA and hB split each
                              run's time into its deterministic part and the birthday search;
                              a second table per pair, tests/natlab/split.py says how)
        [--save runs.jsonl]  (--split: every run appended, for pooling passes)
    .venv/bin/python bench/natlab.py --pool a.jsonl b.jsonl   (no lab: the split table of saved runs)

    .venv/bin/python bench/natlab.py --split --runs 7 \
        --cells consistent/random,random/consistent,fully-random/consistent \
        --pairs node:node,python:node,node:python,python:python
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.natlab.cells import IMPLS, CellResult, run_cell  # noqa: E402
from tests.natlab.lab import NAT_TYPES, LabProcess, NatLab, requirements_problem  # noqa: E402
from tests.natlab.split import Packet, Split, load, split_run  # noqa: E402

CELLS = ["consistent/consistent", "consistent/random", "random/consistent", "fully-random/consistent",
         "random/random"]
EXPECTED_TO_FAIL = {"random/random"}
REFERENCE = ("node", "node")


LEGEND = ("median [p25-p75]; 'dial': the client's connect call (connectMs before its connection line);"
          " 'search': both sides probing (the birthday sockets open and the first random-port probe out), or the"
          " hit if it came first; 'x node': dial->search vs node<-node; 'probes to hit': random-port probes from"
          " the search's start to the hit; 'probe ms (mean)': the random-port probes' mean period (runs of 20+);"
          " 'gap': median gaps; 'repeats': random-port probes to a port already probed in that run / all")


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
    connect_medians: dict[tuple[str, str, str, str], float | None] = {}
    for key, found in results.items():
        times = [r.seconds for r in found if r.connected and r.seconds is not None]
        medians[key] = statistics.median(times) if times else None
        connects = [r.connect_seconds for r in found if r.connect_seconds is not None]
        connect_medians[key] = statistics.median(connects) if connects else None
    rows = [["cell (server/client NAT)", "pair (server<-client)", "median s", "min s", "max s", "connect ms",
             "ok/N", "vs node<-node", "connect vs node", "failed attempts before connecting", "failures"]]
    for (server_nat, client_nat, server, client), found in results.items():
        times = [r.seconds for r in found if r.connected and r.seconds is not None]
        key = (server_nat, client_nat, server, client)
        reference = medians.get((server_nat, client_nat, *REFERENCE))
        median = medians[key]
        ratio = f"x{median / reference:.2f}" if median is not None and reference else "-"
        connect = connect_medians[key]
        connect_reference = connect_medians.get((server_nat, client_nat, *REFERENCE))
        connect_ratio = f"x{connect / connect_reference:.2f}" if connect is not None and connect_reference else "-"
        failures = Counter(r.error_code or r.note or "?" for r in found if not r.connected)
        retried = Counter(code for r in found if r.connected for code in r.errors)
        rows.append([
            f"{server_nat}/{client_nat}", f"{server}<-{client}", fmt(median), fmt(min(times) if times else None),
            fmt(max(times) if times else None), fmt(connect * 1000 if connect is not None else None, 0),
            f"{len(times)}/{runs}", ratio, connect_ratio,
            ", ".join(f"{code} x{n}" for code, n in retried.most_common()) or "-",
            ", ".join(f"{code} x{n}" for code, n in failures.most_common()) or "-",
        ])
    return rows


def start_captures(lab: NatLab, folder: Path, life: float) -> dict[str, tuple[LabProcess, Path]]:
    """A packet recorder on eth0 of hA and hB (tests/natlab/capture.py), ready when this returns."""
    found = {}
    for host in ("hA", "hB"):
        path = folder / f"{host}.jsonl"
        process = lab.spawn(host, [sys.executable, "-m", "tests.natlab.capture", "--iface", "eth0", "--out", str(path),
                                   "--timeout", str(int(life))], label=f"{host}:capture")
        found[host] = (process, path)
    for process, _ in found.values():
        process.wait_for("ready", 15)
    return found


def stop_captures(lab: NatLab, captures: dict[str, tuple[LabProcess, Path]]) -> dict[str, list[Packet]]:
    packets = {}
    for host, (process, path) in captures.items():
        process.close_stdin()
        process.wait_for("done", 15)
        lab.stop_process(process, grace=2)
        packets[host] = load(path)
        path.unlink(missing_ok=True)
    return packets


def birthday_host(cell: str) -> str | None:
    """The host behind the one RANDOM router of ``cell`` (server/client NAT), None if not one."""
    server_nat, client_nat = cell.split("/")
    if server_nat != "consistent" and client_nat == "consistent":
        return "hA"
    if client_nat != "consistent" and server_nat == "consistent":
        return "hB"
    return None


def split_of(result: CellResult, packets: dict[str, list[Packet]]) -> Split | None:
    """The run's split (tests/natlab/split.py), None when it did not connect or has no RANDOM side."""
    line = next((x for x in result.client_lines if x.get("event") == "connection"), None)
    if line is None or not isinstance(line.get("connectMs"), int | float):
        return None
    birthday = birthday_host(result.cell)
    if birthday is None:
        return None
    connected = float(line["_wall"])
    return split_run(packets, birthday=birthday, client="hB", connect_start=connected - line["connectMs"] / 1000,
                     connected=connected, process_started=connected - float(line["_t"]))


def quartiles(values: list[float]) -> tuple[float, float, float] | None:
    """(p25, median, p75) of ``values`` (None when empty)."""
    if not values:
        return None
    if len(values) == 1:
        return values[0], values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], statistics.median(values), q[2]


def fq(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    q = quartiles([v * scale for v in values])
    if q is None:
        return "-"
    return f"{q[1]:.{digits}f} [{q[0]:.{digits}f}-{q[2]:.{digits}f}]"


SplitRun = tuple[str, bool, float | None, Split | None]  # cell, connected, seconds from the client's start, split


def save_run(path: Path, result: CellResult, split: Split | None) -> None:
    """Append one run to ``path`` (JSON lines) for ``--pool``."""
    with path.open("a") as sink:
        sink.write(json.dumps({"cell": result.cell, "pair": result.pair, "connected": result.connected,
                               "seconds": result.seconds, "split": None if split is None else asdict(split)}) + "\n")


def load_runs(paths: list[Path]) -> dict[str, list[SplitRun]]:
    """The runs ``--save`` wrote, by pair."""
    found: dict[str, list[SplitRun]] = {}
    for path in paths:
        for line in path.read_text().splitlines():
            raw = json.loads(line)
            if birthday_host(raw["cell"]) is None:
                continue  # no birthday search in this cell
            split = None
            if raw["split"] is not None:
                fields = raw["split"]
                fields["rounds"] = [tuple(r) for r in fields["rounds"]]
                fields["port_range"] = tuple(fields["port_range"]) if fields["port_range"] else None
                split = Split(**fields)
            found.setdefault(raw["pair"], []).append((raw["cell"], raw["connected"], raw["seconds"], split))
    return found


def split_table(splits: dict[str, list[SplitRun]]) -> list[list[str]]:
    """One row per pair: medians [p25-p75] of every part, pooled over the cells run."""
    rows = [["pair (server<-client)", "ok/N", "total s", "start->1st packet s", "start->dial s", "dial->search s",
             "x node", "dial->1st round ms", "1st->2nd round ms", "2nd reply->search ms", "probes to hit",
             "search s", "hit->conn ms", "probe ms (mean)", "probe gap ms", "keep-alive gap ms", "repeats", "ports"]]
    reference: float | None = None
    for pair, found in splits.items():
        ok = [(seconds, s) for _, connected, seconds, s in found
              if connected and s is not None and s.deterministic is not None]
        total = [seconds for seconds, _ in ok if seconds is not None]
        determ = [s.deterministic for _, s in ok if s.deterministic is not None]
        median_determ = statistics.median(determ) if determ else None
        if pair == "node<-node":
            reference = median_determ
        ratio = f"x{median_determ / reference:.2f}" if median_determ is not None and reference else "-"
        first = [s.rounds[0][0] for _, s in ok if s.rounds]
        between = [s.rounds[1][0] - s.rounds[0][0] for _, s in ok if len(s.rounds) >= 2]
        after = [s.deterministic - s.rounds[-1][1] for _, s in ok
                 if s.rounds and s.rounds[-1][1] is not None and s.deterministic is not None]
        probes = [float(s.probes_searched) for _, s in ok if s.probes_searched is not None]
        search = [s.search for _, s in ok if s.search is not None]
        tail = [s.connected - s.hit for _, s in ok if s.connected is not None and s.hit is not None]
        interval = [s.random_interval_ms for _, s in ok if s.random_interval_ms is not None]
        period = [s.probe_period_ms for _, s in ok if s.probe_period_ms is not None]
        keep = [s.keepalive_interval_ms for _, s in ok if s.keepalive_interval_ms is not None]
        sent = sum(s.random_sent for _, s in ok)
        distinct = sum(s.random_distinct for _, s in ok)
        ranges = [s.port_range for _, s in ok if s.port_range]
        ports = f"{min(a for a, _ in ranges)}-{max(b for _, b in ranges)}" if ranges else "-"
        dial = [s.process_start for _, s in ok if s.process_start is not None]
        packet = [s.first_packet for _, s in ok if s.first_packet is not None]
        rows.append([pair, f"{len(ok)}/{len(found)}", fq(total), fq(packet), fq(dial),
                     fq(determ), ratio, fq(first, 1000, 0), fq(between, 1000, 0), fq(after, 1000, 0), fq(probes, 1, 0),
                     fq(search), fq(tail, 1000, 0), fq(period, 1, 2), fq(interval, 1, 1), fq(keep, 1, 1),
                     f"{sent - distinct}/{sent}", ports])
    return rows


def side_table(splits: dict[str, list[SplitRun]]) -> list[list[str]]:
    """By implementation of each side of the search: the consistent side's random-port probes
    (how many until the hit, their mean period, repeats) and the birthday side's sockets (how
    long opening 255 took, the keep-alive gap)."""
    probing: dict[str, list[Split]] = {}
    birthday: dict[str, list[Split]] = {}
    for pair, found in splits.items():
        server, client = pair.split("<-")
        for cell, connected, _, split in found:
            host = birthday_host(cell)
            if not connected or split is None or host is None:
                continue
            birthday.setdefault(server if host == "hA" else client, []).append(split)
            probing.setdefault(client if host == "hA" else server, []).append(split)
    rows = [["side", "impl", "runs", "probes to hit", "mean probes to hit", "probe ms (mean)", "repeats",
             "sockets opened in ms", "keep-alive gap ms"]]
    for impl in sorted(set(probing) | set(birthday)):
        probers = probing.get(impl, [])
        probes = [float(s.probes_searched) for s in probers if s.probes_searched is not None]
        period = [s.probe_period_ms for s in probers if s.probe_period_ms is not None]
        sent = sum(s.random_sent for s in probers)
        distinct = sum(s.random_distinct for s in probers)
        rows.append(["random ports", impl, str(len(probers)), fq(probes, 1, 0),
                     f"{statistics.mean(probes):.0f}" if probes else "-", fq(period, 1, 2),
                     f"{sent - distinct}/{sent}", "", ""])
    for impl in sorted(birthday):
        sides = birthday[impl]
        opened = [s.open_end - s.open_start for s in sides if s.open_end is not None and s.open_start is not None]
        keep = [s.keepalive_interval_ms for s in sides if s.keepalive_interval_ms is not None]
        rows.append(["birthday", impl, str(len(sides)), "", "", "", "", fq(opened, 1000, 0), fq(keep, 1, 1)])
    return rows


def print_rows(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dht", choices=["node", "python"], default="node", help="the public DHT's nodes")
    parser.add_argument("--pairs", default="node:node", help="server:client implementation pairs")
    parser.add_argument("--cells", default=",".join(CELLS), help="server_nat/client_nat, comma separated")
    parser.add_argument("--deadline", type=float, default=40.0, help="seconds a run may take to connect")
    parser.add_argument("--server-host", default="hA", help="hA (behind rA) or o1 (open, public)")
    parser.add_argument("--client-host", default="hB", help="hB (behind rB) or o1 (open, public)")
    parser.add_argument("--split", action="store_true", help="capture packets and split each run's time")
    parser.add_argument("--save", type=Path, help="--split: append each run to this file (JSON lines)")
    parser.add_argument("--pool", type=Path, nargs="+", help="no lab: the split table of runs --save wrote")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    if args.pool:
        pooled = load_runs(args.pool)
        print(f"Split of {sum(len(v) for v in pooled.values())} runs from {', '.join(map(str, args.pool))}: {LEGEND}")
        print_rows(split_table(dict(sorted(pooled.items(), key=lambda kv: kv[0] != "node<-node"))))
        print()
        print_rows(side_table(pooled))
        return 0
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
        splits: dict[str, list[SplitRun]] = {f"{s}<-{c}": [] for s, c in pairs}
        folder = Path(tempfile.mkdtemp(prefix="natlab-split-"))
        for run in range(args.runs):
            for (s_nat, c_nat, s, c), found in results.items():
                give_up = 2 if f"{s_nat}/{c_nat}" in EXPECTED_TO_FAIL else None
                captures = start_captures(lab, folder, args.deadline + 120) if args.split else None
                result = run_cell(lab, s, c, s_nat, c_nat, deadline=args.deadline, give_up_after_errors=give_up,
                                  server_host=args.server_host, client_host=args.client_host)
                found.append(result)
                split = None
                if captures is not None:
                    split = split_of(result, stop_captures(lab, captures))
                    if birthday_host(result.cell) is not None:
                        splits[result.pair].append((result.cell, result.connected, result.seconds, split))
                    if args.save:
                        save_run(args.save, result, split)
                logging.info("run %d %s %s: connected=%s %s s %s%s", run + 1, result.cell, result.pair,
                             result.connected, fmt(result.seconds), result.error_code or result.note,
                             "" if split is None else f" | {describe(split)}")
        folder.rmdir()
    print(f"NAT lab, {args.dht} DHT of 10 nodes, server in {args.server_host}, client in {args.client_host},"
          f" {args.runs} runs per row, {time.monotonic() - started:.0f} s"
          f" (expected to fail: {', '.join(sorted(EXPECTED_TO_FAIL))})")
    print_rows(table(results, args.runs))
    if args.split:
        print(f"\nSplit, pooled over {', '.join(f'{a}/{b}' for a, b in cells)}: {LEGEND}")
        print_rows(split_table(splits))
        print()
        print_rows(side_table(splits))
    return 0


def describe(split: Split) -> str:
    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v * 1000:.0f}"
    rounds = ", ".join(f"{ms(a)}->{ms(b)}" for a, b in split.rounds)
    return (f"1st packet +{ms(split.first_packet)}, dial +{ms(split.process_start)} ms after start;"
            f" rounds [{rounds}] ms; sockets "
            f"{ms(split.open_start)}-{ms(split.open_end)} ({split.sockets}); random from {ms(split.random_start)};"
            f" search from {ms(split.search_start)}; hit {ms(split.hit)} after {split.probes_in_search}"
            f"/{split.probes_to_hit} probes ({split.random_interval_ms or 0:.1f} ms each, keep-alive"
            f" {split.keepalive_interval_ms or 0:.1f}); connected {ms(split.connected)}")


if __name__ == "__main__":
    sys.exit(main())
