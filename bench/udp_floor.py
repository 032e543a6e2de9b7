#!/usr/bin/env python3
"""The floor of a round trip on this machine: raw UDP ping/echo on loopback, no protocol at all,
each end its own process; a Python pair on the asyncio loop against a Node dgram pair.

The Python echo is shaped as our connections are used: the socket's reader callback hands the
datagram to a task waiting on a future, and the task sends the answer (what ``await
conn.read(); conn.write()`` costs in loop turns, two per message).  ``--callback`` also runs a
Python echo that answers from the reader callback itself (one turn).  Both pairs are measured
``--rounds`` times, alternately, and every p50 is printed: on a shared 2-core VM the floor
itself moves by a factor of 2-3 between runs (whether the two ends share a core).

    .venv/bin/python bench/udp_floor.py [--count 10000] [--rounds 3] [--callback]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NODE_END = ROOT / "bench" / "node" / "udp_floor.js"


def python_end(role: str, port: int, count: int, callback: bool) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        buffer = bytearray(2048)
        inbox: list[tuple[bytes, tuple[str, int]]] = []
        waiter: asyncio.Future[None] | None = None

        def readable() -> None:
            size, source = sock.recvfrom_into(buffer)
            if callback and role == "echo":
                sock.sendto(buffer[:size], source)
                return
            inbox.append((bytes(buffer[:size]), source))
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

        async def read() -> tuple[bytes, tuple[str, int]]:
            nonlocal waiter
            while not inbox:
                waiter = loop.create_future()
                await waiter
            return inbox.pop(0)

        loop.add_reader(sock.fileno(), readable)
        if role == "echo":
            print(json.dumps({"port": sock.getsockname()[1]}), flush=True)
            if callback:
                await loop.create_future()  # answered from the callback until killed
            while True:
                data, source = await read()
                sock.sendto(data, source)
        rtts = []
        payload = bytes(72)
        for _ in range(count):
            start = time.perf_counter()
            sock.sendto(payload, ("127.0.0.1", port))
            await read()
            rtts.append((time.perf_counter() - start) * 1e6)
        rtts.sort()
        print(json.dumps({"p50us": rtts[len(rtts) // 2]}), flush=True)

    asyncio.run(main())


def pair(echo_argv: list[str], ping_argv: list[str]) -> float:
    echo = subprocess.Popen(echo_argv, stdout=subprocess.PIPE, text=True)
    try:
        assert echo.stdout is not None
        port = json.loads(echo.stdout.readline())["port"]
        out = subprocess.run([*ping_argv, str(port)], capture_output=True, text=True, timeout=300, check=True)
        return float(json.loads(out.stdout.strip().splitlines()[-1])["p50us"])
    finally:
        os.kill(echo.pid, signal.SIGTERM)
        echo.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--callback", action="store_true")
    parser.add_argument("--end", nargs=3, metavar=("ROLE", "MODE", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.end:
        role, mode, port = args.end
        python_end(role, int(port), args.count, mode == "callback")
        return 0
    node = shutil.which("node")
    if node is None:
        print("bench/udp_floor.py needs node", file=sys.stderr)
        return 1
    me = [sys.executable, __file__, "--count", str(args.count), "--end"]
    modes = ["task", "callback"] if args.callback else ["task"]
    print(f"raw UDP round trip on loopback, 72 B, p50 of {args.count}, µs")
    for _ in range(args.rounds):
        row = {f"python ({mode})": pair([*me, "echo", mode, "0"], [*me, "ping", mode]) for mode in modes}
        row["node dgram"] = pair([node, str(NODE_END), "echo"], [node, str(NODE_END), "ping", str(args.count)])
        print("  ".join(f"{name} {value:.1f}" for name, value in row.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
