#!/usr/bin/env python3
"""Where a Python client's first connection goes: a Node hyperdht testnet and a fresh Node
hyperswarm-hugin server (tests/interop/node/swarm_peer.js), and in this process a Python
Hyperswarm client of the same group joining the server's topic.

The window is bench/all.py's ``connectMs``: from the swarm's call of peer_connect.connect to the
swarm's ``connection`` event.  It is cProfiled (``--rounds`` fresh servers, one first connection
each, the profiles summed), and the time spent waiting in the selector is told apart from the
Python work:

    .venv/bin/python bench/connect_profile.py [--rounds 10] [--top 30] [--sort tottime]

HYPERSWARM_HUGIN_LOOP picks the loop (see hyperswarm_hugin.event_loop); under uvloop the waits
are inside uvloop's C code and do not show as the selector's.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.all import INTEROP, Child, node_bin, node_peer  # noqa: E402
from hyperswarm_hugin import (  # noqa: E402
    Connection,
    GroupKey,
    Hyperswarm,
    PeerInfo,
    event_loop,
    fill32,
    swarm_host,
)


class Timeline:
    """``--timeline``: when each step of a connect began and ended, ms from the connect call (the
    steps are wrapped in place for the run)."""

    def __init__(self) -> None:
        self.origin = 0.0
        self.marks: list[tuple[str, float, float]] = []
        self.rounds: list[list[tuple[str, float, float]]] = []
        self._undo: list[tuple[Any, str, Any]] = []

    def mark(self, name: str, start: float, end: float) -> None:
        if self.origin:
            self.marks.append((name, (start - self.origin) * 1000, (end - self.origin) * 1000))

    def wrap(self, owner: Any, attr: str, name: str | None = None) -> None:
        real = getattr(owner, attr)
        label = name or attr
        timeline = self
        if asyncio.iscoroutinefunction(real):
            async def wrapped_async(*args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    return await real(*args, **kwargs)
                finally:
                    timeline.mark(label, start, time.perf_counter())
            setattr(owner, attr, wrapped_async)
        else:
            def wrapped(*args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                result = None
                try:
                    result = real(*args, **kwargs)
                    return result
                finally:
                    kind = getattr(result, "kind", None)  # choose_path's answer
                    timeline.mark(f"{label} → {kind.value}" if kind is not None else label, start,
                                  time.perf_counter())
            setattr(owner, attr, wrapped)
        self._undo.append((owner, attr, real))

    def install(self) -> None:
        from hyperswarm_hugin import peer_connect
        from hyperswarm_hugin.actors import udp, udx_io
        from hyperswarm_hugin.actors.runtime import NodeRuntime
        from hyperswarm_hugin.protocol import noise
        from hyperswarm_hugin.protocol.hugin import GroupKey

        self.wrap(NodeRuntime, "status")
        self.wrap(NodeRuntime, "status_now")
        self.wrap(NodeRuntime, "ping")
        self.wrap(NodeRuntime, "request")
        self.wrap(NodeRuntime, "query")
        self.wrap(NodeRuntime, "create_stream")
        self.wrap(GroupKey, "sign", "group.sign")
        self.wrap(GroupKey, "verify", "group.verify")
        self.wrap(noise.NoiseHandshake, "__init__", "NoiseHandshake()")
        self.wrap(noise.NoiseHandshake, "send", "noise.send")
        self.wrap(noise.NoiseHandshake, "recv", "noise.recv")
        self.wrap(peer_connect, "local_addresses")
        self.wrap(peer_connect, "choose_path")
        self.wrap(peer_connect, "Connection", "Connection()")
        self.wrap(udp.UdpEndpoint, "send", "sendto")
        self.wrap(udx_io.StreamTransport, "connect", "transport.connect")
        self.wrap(udx_io.StreamTransport, "schedule_flush", "transport.schedule_flush")
        self.wrap(swarm_host.SwarmHost, "_track", "swarm: track")
        self.wrap(swarm_host.SwarmHost, "_tell", "swarm: tell actor")
        self.wrap(swarm_host.SwarmHost, "_emit", "swarm: emit")
        real_receiver = NodeRuntime._receiver
        timeline = self

        def receiver(runtime: NodeRuntime, socket: int) -> Any:
            received = real_receiver(runtime, socket)

            def timed(datagrams: list[tuple[bytes, Any]]) -> None:
                start = time.perf_counter()
                try:
                    received(datagrams)
                finally:
                    timeline.mark(f"datagrams in ({len(datagrams)})", start, time.perf_counter())
            return timed

        NodeRuntime._receiver = receiver  # type: ignore[method-assign,assignment]
        self._undo.append((NodeRuntime, "_receiver", real_receiver))

    def uninstall(self) -> None:
        for owner, attr, real in reversed(self._undo):
            setattr(owner, attr, real)
        self._undo.clear()

    def report(self) -> None:
        names: dict[str, list[list[tuple[float, float]]]] = {}
        for marks in self.rounds:
            per: dict[str, list[tuple[float, float]]] = {}
            for name, start, end in marks:
                per.setdefault(name, []).append((start, end))
            for name, spans in per.items():
                names.setdefault(name, []).append(spans)
        print("step (first call in each round): median start ms, median duration ms, calls per round")
        rows = []
        for name, rounds in names.items():
            starts = [spans[0][0] for spans in rounds]
            durations = [spans[0][1] - spans[0][0] for spans in rounds]
            calls = statistics.median(len(spans) for spans in rounds)
            rows.append((statistics.median(starts), name, statistics.median(durations), calls))
        for start, name, duration, calls in sorted(rows):
            print(f"  {name:24} start {start:7.3f}  took {duration:7.3f}  x{calls:g}")


async def one_round(bootstrap: list[tuple[str, int]], text: str, profile: cProfile.Profile,
                    timeline: Timeline | None = None) -> float:
    group_hex = os.urandom(32).hex()
    server = node_peer(text, group_hex, "server", "echo")
    try:
        server.wait("ready", 60)
        group = GroupKey.from_seed(fill32(bytes.fromhex(group_hex)))
        swarm = Hyperswarm(group=group, bootstrap=bootstrap)
        await swarm.start()
        opened: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        started: list[float] = []
        real_connect = swarm_host.connect  # type: ignore[attr-defined]

        async def timed_connect(*args: Any, **kwargs: Any) -> Connection:
            started.append(time.perf_counter())
            if timeline is not None:
                timeline.origin = started[0]
                timeline.marks = []
            else:
                profile.enable()
            return await real_connect(*args, **kwargs)

        def on_connection(conn: Connection, info: PeerInfo) -> None:
            profile.disable()
            if timeline is not None and timeline.origin:
                now = time.perf_counter()
                timeline.mark("connection event", now, now)
                timeline.rounds.append(timeline.marks)
                timeline.origin = 0.0
            if not opened.done():
                opened.set_result(time.perf_counter() - started[0])

        swarm_host.connect = timed_connect  # type: ignore[attr-defined]
        try:
            swarm.on("connection", on_connection)
            swarm.join(group.topic, server=False, client=True)
            return await asyncio.wait_for(opened, 30) * 1000
        finally:
            swarm_host.connect = real_connect  # type: ignore[attr-defined]
            profile.disable()
            await swarm.destroy()
    finally:
        server.stop()


async def run(args: argparse.Namespace) -> None:
    testnet = Child([node_bin(), str(INTEROP / "node" / "dht_network.js"), "--nodes", "5", "--timeout", "600"],
                    cwd=INTEROP)
    try:
        text = ",".join(testnet.wait("ready", 120)["bootstrap"])
        bootstrap = [(h, int(p)) for h, p in (a.split(":") for a in text.split(","))]
        profile = cProfile.Profile(time.thread_time) if args.clock == "cpu" else cProfile.Profile()
        timeline = Timeline() if args.timeline else None
        if timeline is not None:
            timeline.install()
        try:
            times = [await one_round(bootstrap, text, profile, timeline) for _ in range(args.rounds)]
        finally:
            if timeline is not None:
                timeline.uninstall()
    finally:
        testnet.stop()
    print(f"connect → connection event, ms: median {statistics.median(times):.2f}, "
          f"all {' '.join(f'{t:.2f}' for t in times)}")
    if timeline is not None:
        timeline.report()
        return
    stats = pstats.Stats(profile)
    total = stats.total_tt  # type: ignore[attr-defined]
    waits = sum(tt for (file, _, name), (_, _, tt, _, _) in stats.stats.items()  # type: ignore[attr-defined]
                if name in ("<method 'poll' of 'select.epoll' objects>", "<method 'select' of 'select.epoll' objects>"))
    print(f"profiled ({args.clock}) {total * 1000 / args.rounds:.2f} ms a connect, of which waiting in the selector "
          f"{waits * 1000 / args.rounds:.2f} ms (profiler overhead included)")
    stats.sort_stats(args.sort).print_stats(args.top)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--timeline", action="store_true", help="time the steps instead of profiling")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: this thread's CPU time (a sendto that wakes the Node peer on a busy "
                        "machine is otherwise charged with the Node peer's work until we run again)")
    args = parser.parse_args()
    event_loop.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
