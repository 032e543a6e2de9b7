#!/usr/bin/env python3
"""Every figure of issue 14 against Node, in one run: figure, Python, Node, ratio, target, met?

Figures (``--figures`` picks some, comma-separated; default all):

  stream      bench/stream.py throughput, Python → Python and Python → Node, against Node → Node
  rtt         bench/stream.py 32-byte round trip p50, Python ↔ Python against Node ↔ Node
  stack       whole stack on a Node hyperdht testnet: a Python Hugin client (run_node.py peer
              --mode source) → a Node hyperswarm-hugin sink, against a Node client; a Node ping
              client → a Python echo peer, against a Node echo peer
  join        join → first connection: fresh Python and Node client processes take turns joining
              a fresh Node hyperswarm-hugin server, ``--join-rounds`` each per repeat; their
              ``connectMs`` (the swarm's connect call → its connection event), as bench/connect.py
  dht         bench/dht_rpc.py PING and FIND_NODE answered per second
  rss         an idle connected peer process (run_node.py peer --mode idle, connected to a Node
              peer) against that Node peer, RSS after the connection settles

Each figure is measured ``--repeat`` times (default 3) and the medians are printed.  Python
children use uvloop when ``--loop uvloop`` (HYPERSWARM_HUGIN_LOOP=uvloop), plain asyncio otherwise.

The Python children run as installed: before the first one starts, our modules are compiled into
the checkout's ``__pycache__`` directories (``compileall``, as ``pip install`` compiles into
site-packages), so no child compiles them from source, even where PYTHONDONTWRITEBYTECODE=1 is set
(it stops an interpreter writing bytecode, not reading it).  Without this, each child's heap keeps
the compiler's freed memory (about 1 MB of the idle peer's RSS).

    .venv/bin/python bench/all.py [--figures stream,rtt,stack,join,dht,rss] [--repeat 3] [--join-rounds 5] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import dht_rpc, stream  # noqa: E402
from bench.bytecode import compile_bytecode  # noqa: E402
from tests.lines import JsonLineReader  # noqa: E402

INTEROP = ROOT / "tests" / "interop"
SENDER_STATS: dict[str, list[str]] = {}
ALL = ("stream", "rtt", "stack", "join", "dht", "rss")


@dataclass
class Figure:
    """One row: samples of Python's and Node's figure; ``higher`` says which way is better."""

    name: str
    unit: str
    target: float
    higher: bool
    python: list[float] = field(default_factory=list)
    node: list[float] = field(default_factory=list)

    def row(self) -> tuple[str, str, str, str, str, str]:
        if not self.python or not self.node:
            return (self.name, "-", "-", "-", self.goal(), "-")
        py, js = statistics.median(self.python), statistics.median(self.node)
        ratio = py / js if js else float("inf")
        met = ratio >= self.target if self.higher else ratio <= self.target
        return (self.name, f"{fmt(py)} {self.unit}", f"{fmt(js)}", f"{ratio:.2f}", self.goal(),
                "yes" if met else "no")

    def goal(self) -> str:
        return f"{'>=' if self.higher else '<='} {self.target:g}"


def fmt(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:.0f}k"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}"


class Child:
    """A child process speaking JSON lines on stdout."""

    def __init__(self, argv: list[str], cwd: Path = ROOT) -> None:
        self.proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        assert self.proc.stdout is not None
        self.lines = JsonLineReader(self.proc.stdout)

    def wait(self, event: str, deadline: float = 120.0) -> dict[str, Any]:
        end = time.monotonic() + deadline
        while True:
            found = self.lines.read(max(0.1, end - time.monotonic()))
            if found is None:
                raise RuntimeError(f"{self.proc.args[1]} ended or timed out without {event!r}")
            if found.get("event") == event or (event == "ready" and "bootstrap" in found):
                return found
            if found.get("event") == "error":
                raise RuntimeError(f"{self.proc.args[1]}: {found}")

    def rss(self) -> float:
        """Resident set size in MB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / 1e6
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.lines.close()


def node_bin() -> str:
    node = shutil.which("node")
    assert node is not None
    return node


def hugin_topic(group: str) -> str:
    """The Hugin topic of a group seed, as run_node.py peer derives it."""
    from hyperswarm_hugin import GroupKey, fill32

    return GroupKey.from_seed(fill32(bytes.fromhex(group))).topic.hex()


def node_peer(bootstrap: str, group: str, role: str, mode: str, *extra: str) -> Child:
    return Child([node_bin(), str(INTEROP / "node" / "swarm_peer.js"), "--bootstrap", bootstrap, "--seed",
                  os.urandom(32).hex(), "--group", group, "--topic", hugin_topic(group), "--role", role,
                  "--mode", mode, "--timeout", "300", *extra], cwd=INTEROP)


def python_peer(bootstrap: str, group: str, role: str, mode: str, *extra: str) -> Child:
    return Child([sys.executable, str(ROOT / "run_node.py"), "peer", "--bootstrap", bootstrap, "--group", group,
                  "--role", role, "--mode", mode, "--timeout", "300", *extra])


def measure_stack(figs: dict[str, Figure], mebibytes: int, count: int) -> None:
    testnet = Child([node_bin(), str(INTEROP / "node" / "dht_network.js"), "--nodes", "5", "--timeout", "600"],
                    cwd=INTEROP)
    try:
        bootstrap = ",".join(testnet.wait("ready", 120)["bootstrap"])
        total = mebibytes * 1024 * 1024
        # Throughput and connect time: a Python or a Node client (source) → a Node sink.
        for impl in ("python", "node"):
            group = os.urandom(32).hex()
            sink = node_peer(bootstrap, group, "server", "sink", "--bytes", str(total))
            client: Child | None = None
            try:
                sink.wait("ready", 60)
                factory = python_peer if impl == "python" else node_peer
                client = factory(bootstrap, group, "client", "source", "--bytes", str(total))
                client.wait("connection", 60)
                sunk = sink.wait("sunk", 300)
                mbps = sunk["bytes"] / sunk["seconds"] / 1e6
                (figs["stack_mbps"].python if impl == "python" else figs["stack_mbps"].node).append(mbps)
            finally:
                for child in (client, sink):
                    if child is not None:
                        child.stop()
        # Latency: a Node ping client → a Python or a Node echo peer.
        for impl in ("python", "node"):
            group = os.urandom(32).hex()
            factory = python_peer if impl == "python" else node_peer
            echo = factory(bootstrap, group, "server", "echo")
            pinger: Child | None = None
            try:
                echo.wait("ready", 60)
                pinger = node_peer(bootstrap, group, "client", "ping", "--count", str(count))
                pings = pinger.wait("pings", 300)
                us = pings["median_ms"] * 1000
                (figs["stack_rtt"].python if impl == "python" else figs["stack_rtt"].node).append(us)
            finally:
                for child in (pinger, echo):
                    if child is not None:
                        child.stop()
    finally:
        testnet.stop()


def join_samples(rounds: int, clients: dict[str, Callable[[str, str], Child]],
                 warm_server: bool = False) -> dict[str, list[float]]:
    """``rounds`` first connections of each of ``clients`` (name → a client process given the
    bootstrap and the group), taking turns, each against a fresh Node server (one warm server
    for all with ``warm_server``) on a Node testnet: their ``connectMs``."""
    samples: dict[str, list[float]] = {name: [] for name in clients}
    testnet = Child([node_bin(), str(INTEROP / "node" / "dht_network.js"), "--nodes", "5", "--timeout", "900"],
                    cwd=INTEROP)
    server: Child | None = None
    try:
        bootstrap = ",".join(testnet.wait("ready", 120)["bootstrap"])
        group = ""
        for _ in range(rounds):
            for name, start_client in clients.items():
                if server is None or not warm_server:
                    if server is not None:
                        server.stop()
                    group = os.urandom(32).hex()
                    server = node_peer(bootstrap, group, "server", "echo")
                    server.wait("ready", 60)
                client = start_client(bootstrap, group)
                try:
                    line = client.wait("connection", 60)
                    if line.get("connectMs") is None:
                        raise RuntimeError(f"no connectMs in {line}")
                    samples[name].append(float(line["connectMs"]))
                finally:
                    client.stop()
    finally:
        if server is not None:
            server.stop()
        testnet.stop()
    return samples


JOIN_CLIENTS: dict[str, Callable[[str, str], Child]] = {
    "python": lambda bootstrap, group: python_peer(bootstrap, group, "client", "idle"),
    "node": lambda bootstrap, group: node_peer(bootstrap, group, "client", "sink"),
}


def measure_join(figs: dict[str, Figure], rounds: int) -> None:
    samples = join_samples(rounds, JOIN_CLIENTS)
    figs["join"].python.extend(samples["python"])
    figs["join"].node.extend(samples["node"])


def measure_rss(figs: dict[str, Figure], settle: float) -> None:
    testnet = Child([node_bin(), str(INTEROP / "node" / "dht_network.js"), "--nodes", "5", "--timeout", "600"],
                    cwd=INTEROP)
    try:
        bootstrap = ",".join(testnet.wait("ready", 120)["bootstrap"])
        group = os.urandom(32).hex()
        js = node_peer(bootstrap, group, "server", "echo")
        py: Child | None = None
        try:
            js.wait("ready", 60)
            py = python_peer(bootstrap, group, "client", "idle")
            py.wait("connection", 60)
            time.sleep(settle)
            figs["rss"].python.append(py.rss())
            figs["rss"].node.append(js.rss())
        finally:
            for child in (py, js):
                if child is not None:
                    child.stop()
    finally:
        testnet.stop()


def measure_stream(figs: dict[str, Figure], mebibytes: int, want: set[str]) -> None:
    total = mebibytes * 1024 * 1024
    for sender, receiver, key in (("python", "python", "py_py"), ("python", "node", "py_js"),
                                  ("node", "node", None)):
        sent, done = stream.run_pair(sender, receiver, "source", "sink", ["--bytes", str(total)])
        mbps = done["bytes"] / done["seconds"] / 1e6
        if sender == "python":
            # the sender's own account: packets sent again, slow starts left on a delay rise
            # rather than a loss, the path MTU it reached
            SENDER_STATS.setdefault(f"Python → {receiver.capitalize()}", []).append(
                f"{sent.get('retransmits')}/{sent.get('slow_start_exits')}/{sent.get('mtu')}")
        if key is None:
            figs["stream_py_py"].node.append(mbps)
            figs["stream_py_js"].node.append(mbps)
        else:
            figs[f"stream_{key}"].python.append(mbps)


def measure_rtt(figs: dict[str, Figure], count: int) -> None:
    for impl in ("python", "node"):
        pings, _ = stream.run_pair(impl, impl, "ping", "echo", ["--count", str(count)])
        (figs["rtt"].python if impl == "python" else figs["rtt"].node).append(pings["median_ms"])


def measure_dht(figs: dict[str, Figure], seconds: float, window: int = 128, nodes: int = 21) -> None:
    node = node_bin()
    keep_alive = str(int(4 * seconds + 60))
    targets = [
        ("python", [sys.executable, str(ROOT / "run_node.py"), "testnet", "--size", str(nodes),
                    "--timeout", keep_alive], ROOT),
        ("node", [node, str(INTEROP / "node" / "dht_network.js"), "--nodes", str(nodes), "--impl", "dht-rpc",
                  "--timeout", keep_alive], INTEROP),
    ]
    for name, argv, cwd in targets:
        target = dht_rpc.Target(name, argv, cwd)
        try:
            dht_rpc.load(node, target, "ping", 1.0, window)  # warm-up
            for command, key in (("ping", "dht_ping"), ("find_node", "dht_find")):
                result = dht_rpc.load(node, target, command, seconds, window)
                rate = result["answered"] / result["seconds"]
                (figs[key].python if name == "python" else figs[key].node).append(rate)
        finally:
            target.stop()


def figures() -> dict[str, Figure]:
    return {
        "stream_py_py": Figure("stream.py MB/s, Python → Python (Node: Node → Node)", "MB/s", 0.8, True),
        "stream_py_js": Figure("stream.py MB/s, Python → Node (Node: Node → Node)", "MB/s", 0.8, True),
        "stack_mbps": Figure("whole stack MB/s, Python client → Node sink (Node: Node client)", "MB/s", 0.8, True),
        "rtt": Figure("stream.py 32 B round trip p50 ms, Python ↔ Python", "ms", 2.0, False),
        "stack_rtt": Figure("whole stack ping p50 µs, Node client → Python echo peer", "µs", 2.0, False),
        "dht_ping": Figure("dht_rpc.py PING answered/s", "/s", 1.0, True),
        "dht_find": Figure("dht_rpc.py FIND_NODE answered/s", "/s", 0.8, True),
        "rss": Figure("idle connected peer RSS MB", "MB", 0.5, False),
        "join": Figure("join → first connection ms (client connect → open)", "ms", 0.5, False),
    }


def print_table(figs: dict[str, Figure], want: set[str], repeat: int, args: argparse.Namespace) -> None:
    chosen = {
        "stream": ("stream_py_py", "stream_py_js"), "rtt": ("rtt",), "stack": ("stack_mbps", "stack_rtt"),
        "join": ("join",), "dht": ("dht_ping", "dht_find"), "rss": ("rss",),
    }
    order = ["stream_py_py", "stream_py_js", "stack_mbps", "rtt", "stack_rtt", "dht_ping", "dht_find", "rss", "join"]
    keys = [k for k in order if any(k in chosen[w] for w in want)]
    rows = [("figure", "Python", "Node", "ratio", "target", "met?")] + [figs[k].row() for k in keys]
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    print(f"bench/all.py: medians of {repeat} run(s); stream {args.mebibytes} MiB, stack {args.stack_mebibytes} "
          f"MiB, {args.count} round trips, dht {args.seconds:g} s, join {args.join_rounds * repeat} first connections "
          f"each; Python event loop: {args.loop}")
    print()
    print("| " + " | ".join(c.ljust(w) for c, w in zip(rows[0], widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows[1:]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
    node = subprocess.run([node_bin(), "--version"], capture_output=True, text=True).stdout.strip()
    if SENDER_STATS:
        print()
        print("stream.py Python senders, each run (retransmits / slow-start exits on delay / path MTU): " +
              "; ".join(f"{pair} {', '.join(runs)}" for pair, runs in SENDER_STATS.items()))
    print()
    print(f"machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
          f"{platform.system()} {platform.release()}, Python {platform.python_version()}, Node {node}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--figures", default=",".join(ALL), help=f"comma-separated, of {', '.join(ALL)}")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="short runs: 32 MiB, 2,000 pings, 3 s dht, 1 repeat")
    parser.add_argument("--mebibytes", type=int, default=128)
    parser.add_argument("--stack-mebibytes", type=int, default=64)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--join-rounds", type=int, default=5, help="first connections of each per repeat")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio",
                        help="the Python children's event loop (uvloop needs `pip install .[fast]`)")
    args = parser.parse_args()
    if args.quick:
        args.mebibytes, args.stack_mebibytes, args.count, args.seconds, args.repeat = 32, 32, 2000, 3.0, 1
    want = {w.strip() for w in args.figures.split(",") if w.strip()}
    unknown = want - set(ALL)
    if unknown:
        parser.error(f"unknown figures: {', '.join(sorted(unknown))}")
    if shutil.which("node") is None or not (INTEROP / "node_modules").is_dir():
        print("bench/all.py needs node and tests/interop/node_modules (.ci/install)", file=sys.stderr)
        return 1
    os.environ["HYPERSWARM_HUGIN_LOOP"] = args.loop
    compile_bytecode()
    figs = figures()
    for _ in range(args.repeat):
        if "stream" in want:
            measure_stream(figs, args.mebibytes, want)
        if "rtt" in want:
            measure_rtt(figs, args.count)
        if "stack" in want:
            measure_stack(figs, args.stack_mebibytes, args.count)
        if "join" in want:
            measure_join(figs, args.join_rounds)
        if "dht" in want:
            measure_dht(figs, args.seconds)
        if "rss" in want:
            measure_rss(figs, 3.0)
    print_table(figs, want, args.repeat, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
