#!/usr/bin/env python3
"""Where a 32-byte round trip's Python work goes: both ends of bench/stream_peer.py's ping/echo in
one process, on one asyncio loop, over loopback UDP.

With no process to wake and nothing else on the loop, what it shows does not swing with the
machine's load the way bench/stream.py's figures do:

- ``--count`` round trips timed in ten blocks (the fastest and the median block, both ends
  together, warm caches: a floor, not what two processes see);
- with ``--bytecodes``, the bytecodes the interpreter ran per round trip, by function
  (``sys.settrace`` with opcode events over 2,000 round trips; exact and repeatable, and a
  fair proxy for the interpreter's share of the time).

    .venv/bin/python bench/rtt_profile.py [--count 20000] [--bytecodes] [--top 40]

The reader is ``async for message in conn`` and the pinger ``conn.write(); await conn.read()``,
as in bench/stream_peer.py.  HYPERSWARM_HUGIN_LOOP picks the loop (see hyperswarm_hugin.event_loop).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from stream import handshake_pair  # noqa: E402

from hyperswarm_hugin import event_loop  # noqa: E402
from hyperswarm_hugin.actors.runtime import NodeRuntime, RuntimeConfig  # noqa: E402
from hyperswarm_hugin.connection import Connection  # noqa: E402
from hyperswarm_hugin.protocol.dht.node import NodeOptions  # noqa: E402

Key = tuple[str, str]


class OpcodeCounter:
    """Bytecodes executed and calls made, by (file, function)."""

    def __init__(self) -> None:
        self.opcodes: collections.Counter[Key] = collections.Counter()
        self.calls: collections.Counter[Key] = collections.Counter()

    def trace(self, frame: FrameType, event: str, arg: Any) -> Any:
        key = (Path(frame.f_code.co_filename).name, frame.f_code.co_qualname)
        if event == "call":
            frame.f_trace_opcodes = True
            self.calls[key] += 1
        elif event == "opcode":
            self.opcodes[key] += 1
        return self.trace


async def main(args: argparse.Namespace) -> None:
    ini, res = handshake_pair()
    runtimes = [NodeRuntime(RuntimeConfig(options=NodeOptions(bootstrap=[], ephemeral=True))) for _ in range(2)]
    for runtime in runtimes:
        await runtime.start()
    try:
        a, b = runtimes[0].create_stream(), runtimes[1].create_stream()
        b.connect(a.id)
        a.connect(b.id, ("127.0.0.1", runtimes[1].server_address[1]))
        pinger, echoer = Connection(a, ini), Connection(b, res)

        async def echo() -> None:
            async for message in echoer:
                echoer.write(message)

        echoing = asyncio.ensure_future(echo())
        payload = bytes(32)
        for _ in range(1000):  # warm up
            pinger.write(payload)
            await pinger.read()
        blocks = []
        for _ in range(10):
            start = time.perf_counter()
            for _ in range(args.count // 10):
                pinger.write(payload)
                await pinger.read()
            blocks.append((time.perf_counter() - start) / (args.count // 10) * 1e6)
        blocks.sort()
        print(f"round trip, both ends in one process: fastest block {blocks[0]:.1f} µs, median {blocks[5]:.1f} µs")
        if args.bytecodes:
            counter = OpcodeCounter()
            rounds = 2000
            sys.settrace(counter.trace)
            try:
                for _ in range(rounds):
                    pinger.write(payload)
                    await pinger.read()
            finally:
                sys.settrace(None)
            total = sum(counter.opcodes.values())
            print(f"per round trip (both ends): {total / rounds:.0f} bytecodes, "
                  f"{sum(counter.calls.values()) / rounds:.0f} Python calls (a coroutine's resumption counts as one)")
            print(f"{'bytecodes':>9} {'calls':>5}  function")
            for key, count in counter.opcodes.most_common(args.top):
                print(f"{count / rounds:9.1f} {counter.calls[key] / rounds:5.1f}  {key[0]}:{key[1]}")
        echoing.cancel()
    finally:
        for runtime in runtimes:
            await runtime.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--bytecodes", action="store_true")
    parser.add_argument("--top", type=int, default=40)
    event_loop.run(main(parser.parse_args()))
