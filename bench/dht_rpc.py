#!/usr/bin/env python3
"""dht-rpc throughput: a Python DHT node against a Node dht-rpc node, in one run.

One load generator (bench/node/loadgen.js, plain UDP, hand-built requests) keeps a window
of PING or FIND_NODE requests in flight at each target for --seconds and counts answers.
Each target is the bootstrapper of a 21-node network in its own process (so FIND_NODE
answers carry 20 closer nodes): `run_node.py testnet` for Python, tests/interop's
dht-rpc for Node.  Targets run one after the other; the generator shares the machine.

Besides the rate, each line gives the CPU time (user + system, from /proc) the target's
process spent per answered request: steadier than the rate on a shared machine, where the
generator, the target and other work compete for the same cores.

    .venv/bin/python bench/dht_rpc.py [--seconds 10] [--window 128] [--nodes 21]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.lines import JsonLineReader  # noqa: E402


class Target:
    """A DHT network in a child process; ``address`` is its bootstrapper, the node under load."""

    def __init__(self, name: str, argv: list[str], cwd: Path) -> None:
        self.name = name
        self.proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        assert self.proc.stdout is not None
        self.lines = JsonLineReader(self.proc.stdout)
        first = self.lines.read(120.0)
        if first is None or "bootstrap" not in first:
            self.stop()
            raise RuntimeError(f"{name} network did not start: {first}")
        host, port = first["bootstrap"][0].rsplit(":", 1)
        self.address = (host, int(port))

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.lines.close()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` so far (Linux /proc), or None."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(node: str, target: Target, command: str, seconds: float, window: int) -> dict[str, Any]:
    """One loadgen run at ``target``: its JSON line, plus ``cpuSeconds``, the target's CPU time
    during the run (None where /proc cannot tell)."""
    host, port = target.address
    before = cpu_seconds(target.proc.pid)
    done = subprocess.run(
        [node, str(ROOT / "bench" / "node" / "loadgen.js"), "--host", host, "--port", str(port),
         "--command", command, "--window", str(window), "--seconds", str(seconds)],
        capture_output=True, text=True, timeout=seconds + 30, check=True,
    )
    after = cpu_seconds(target.proc.pid)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["cpuSeconds"] = None if before is None or after is None else after - before
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--nodes", type=int, default=21)
    args = parser.parse_args()
    node = shutil.which("node")
    if node is None or not (ROOT / "tests" / "interop" / "node_modules").is_dir():
        print("bench/dht_rpc.py needs node and tests/interop/node_modules (.ci/install)", file=sys.stderr)
        return 1
    keep_alive = str(int(4 * args.seconds + 60))
    targets = [
        ("Python", [sys.executable, str(ROOT / "run_node.py"), "testnet", "--size", str(args.nodes),
                    "--timeout", keep_alive], ROOT),
        ("Node dht-rpc", [node, str(ROOT / "tests" / "interop" / "node" / "dht_network.js"),
                          "--nodes", str(args.nodes), "--impl", "dht-rpc", "--timeout", keep_alive],
         ROOT / "tests" / "interop"),
    ]
    results: dict[tuple[str, str], dict[str, Any]] = {}
    for name, argv, cwd in targets:
        target = Target(name, argv, cwd)
        try:
            load(node, target, "ping", 1.0, args.window)  # warm-up
            for command in ("ping", "find_node"):
                results[(name, command)] = load(node, target, command, args.seconds, args.window)
        finally:
            target.stop()

    print(f"dht-rpc requests answered per second ({args.seconds:g} s each, window {args.window}, "
          f"target = bootstrapper of a {args.nodes}-node network)")
    print()
    header = f"{'command':<10} {'target':<13} {'sent':>9} {'answered':>9} {'lost':>6} {'answered/s':>11} " \
             f"{'rtt p50 ms':>10} {'rtt p99 ms':>10} {'cpu us/answer':>13}"
    print(header)
    print("-" * len(header))
    for command in ("ping", "find_node"):
        for name, _, _ in targets:
            r = results[(name, command)]
            rate = r["answered"] / r["seconds"]
            cpu = "-"
            if r["cpuSeconds"] is not None and r["answered"]:
                cpu = f"{1e6 * r['cpuSeconds'] / r['answered']:.2f}"
            print(f"{command:<10} {name:<13} {r['sent']:>9} {r['answered']:>9} {r['lost']:>6} {rate:>11.0f} "
                  f"{r['rttMedianMs'] or 0:>10.2f} {r['rttP99Ms'] or 0:>10.2f} {cpu:>13}")
        py = results[("Python", command)]
        js = results[("Node dht-rpc", command)]
        ratio = (py["answered"] / py["seconds"]) / max(1e-9, js["answered"] / js["seconds"])
        cpu_ratio = ""
        if py["cpuSeconds"] and js["cpuSeconds"] and py["answered"] and js["answered"]:
            cpu_ratio = f"{(py['cpuSeconds'] / py['answered']) / (js['cpuSeconds'] / js['answered']):.2f}"
        print(f"{command:<10} {'Python/Node':<13} {'':>9} {'':>9} {'':>6} {ratio:>11.2f} {'':>10} {'':>10} "
              f"{cpu_ratio:>13}")
        print()
    versions = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, Node {versions}; "
          "the load generator runs on the same machine as the target.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
