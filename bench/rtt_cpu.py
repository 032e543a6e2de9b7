#!/usr/bin/env python3
"""CPU time per 32-byte round trip at each end of bench/stream.py's ping/echo pair, user and
kernel apart, Python ↔ Python and Node ↔ Node.

Each pair runs twice, with --short and --long round trips; each end's CPU time is read from
/proc/PID/schedstat (ns) and /proc/PID/stat (user, system ticks) when the pinger reports, and the
short run is subtracted from the long one, so start-up is left out.  Wall-clock round trips on a
shared machine swing with where the scheduler puts the two ends; CPU per round trip swings less
and says where the difference to Node is (user time: the interpreter; system time: the same
syscalls and wake-ups for both).  ``--same-cpu N`` pins both ends to CPU N, which takes the
scheduler's placement out of the wall-clock figures too.  Linux only.

    .venv/bin/python bench/rtt_cpu.py [--rounds 2] [--short 1000] [--long 11000] [--same-cpu 0]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import stream  # noqa: E402

TICK_NS = 1e9 / os.sysconf("SC_CLK_TCK")


def cpu_of(pid: int) -> tuple[float, float, float]:
    """(on-CPU ns, user ns, system ns) of a live process."""
    with open(f"/proc/{pid}/schedstat") as f:
        on_cpu = float(f.read().split()[0])
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return on_cpu, float(fields[11]) * TICK_NS, float(fields[12]) * TICK_NS


class MeteredPeer(stream.Peer):
    """A bench/stream.py peer whose CPU time is read at once when the pinger reports."""

    running: ClassVar[dict[str, int]] = {}
    taken: ClassVar[dict[str, tuple[float, float, float]]] = {}
    cpu: ClassVar[int | None] = None  # pin both ends to this CPU

    def __init__(self, impl: str, *args: str) -> None:
        super().__init__(impl, *args)
        MeteredPeer.running[args[args.index("--mode") + 1]] = self.proc.pid
        if MeteredPeer.cpu is not None:
            os.sched_setaffinity(self.proc.pid, {MeteredPeer.cpu})

    def wait(self, event: str, deadline: float = 600.0) -> dict[str, Any]:
        found = super().wait(event, deadline)
        if event == "pings":
            for mode, pid in MeteredPeer.running.items():
                MeteredPeer.taken[mode] = cpu_of(pid)
        return found


def measure(impl: str, count: int) -> tuple[float, dict[str, tuple[float, float, float]]]:
    MeteredPeer.running, MeteredPeer.taken = {}, {}
    pings, _ = stream.run_pair(impl, impl, "ping", "echo", ["--count", str(count)])
    return float(pings["median_ms"]), dict(MeteredPeer.taken)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--short", type=int, default=1000)
    parser.add_argument("--long", type=int, default=11000)
    parser.add_argument("--same-cpu", type=int, metavar="CPU",
                        help="pin both ends to this CPU: the two take turns on it, no cross-CPU wake-ups")
    args = parser.parse_args()
    stream.Peer = MeteredPeer  # type: ignore[misc]
    MeteredPeer.cpu = args.same_cpu
    n = args.long - args.short
    print("per round trip, µs: p50 wall (long run); CPU at each end as total (user + system)")
    for _ in range(args.rounds):
        for impl in ("python", "node"):
            _, short = measure(impl, args.short)
            p50, long = measure(impl, args.long)
            ends = []
            for mode in ("ping", "echo"):
                total, user, system = ((b - a) / n / 1000 for a, b in zip(short[mode], long[mode], strict=True))
                ends.append(f"{mode} {total:.1f} ({user:.0f} + {system:.0f})")
            print(f"{impl:<6} p50 {p50 * 1000:6.1f}   " + "   ".join(ends))
    return 0


if __name__ == "__main__":
    sys.exit(main())
