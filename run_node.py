#!/usr/bin/env python3
"""Run a hyperswarm-hugin node from the command line.

    python run_node.py dht --host 127.0.0.1 --port P --bootstrap 127.0.0.1:Q[,...]
    python run_node.py testnet --size N --host 127.0.0.1 [--port P]
    python run_node.py demo

stdout carries one JSON object per line (the first says where the node
listens); diagnostics go to stderr.  A node stops cleanly on SIGINT, SIGTERM
or after ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from config.settings import DHTSettings, SettingsError, TestnetSettings, load_toml, merge
from hyperswarm_hugin import DHT, Testnet
from protocol.dht.events import DHTEvent, NodeBecamePersistent, NodeReady

log = logging.getLogger("run_node")


def emit(event: str, **fields: Any) -> None:
    """Write one JSON event line to stdout."""
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def event_fields(ev: DHTEvent) -> tuple[str, dict[str, Any]] | None:
    if isinstance(ev, NodeReady):
        return "ready", {"id": ev.id.hex() if ev.id else None, "firewalled": ev.firewalled,
                         "ephemeral": ev.ephemeral}
    if isinstance(ev, NodeBecamePersistent):
        return "persistent", {"id": ev.id.hex(), "host": ev.address[0], "port": ev.address[1]}
    return None


async def run_until_stopped(timeout: float | None, body: Callable[[], Awaitable[None]]) -> None:
    """Run ``body`` then wait for SIGINT/SIGTERM or the timeout."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await body()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def run_dht(settings: DHTSettings) -> None:
    node = DHT(bootstrap=settings.bootstrap, host=settings.host, port=settings.port,
               mode=settings.mode, firewalled=settings.firewalled)

    def on_event(ev: DHTEvent) -> None:
        found = event_fields(ev)
        if found:
            emit(found[0], **found[1])

    async def body() -> None:
        await node.start()
        host, port = node.address
        emit("listening", host=host, port=port, id=node.expected_id.hex())
        node.on_event(on_event)

    try:
        await run_until_stopped(settings.timeout, body)
        if node._runtime is not None:
            status = await node.status()
            emit("stats", **status.stats, table_size=len(status.table))
    finally:
        await node.close()
        emit("close")


async def run_testnet(settings: TestnetSettings) -> None:
    net: Testnet | None = None

    async def body() -> None:
        nonlocal net
        net = await Testnet.create(settings.size, settings.host, settings.port)
        emit("testnet", bootstrap=[f"{h}:{p}" for h, p in net.bootstrap],
             nodes=[{"host": n.address[0], "port": n.address[1], "id": n.expected_id.hex()}
                    for n in net.nodes])

    try:
        await run_until_stopped(settings.timeout, body)
    finally:
        if net is not None:
            await net.close()
        emit("close")


async def run_demo(size: int, joiners: int, timeout: float) -> None:
    """A local testnet, a few more nodes joining it, and a lookup from each of them."""
    async with await Testnet.create(size) as net:
        emit("testnet", bootstrap=[f"{h}:{p}" for h, p in net.bootstrap], size=size)
        nodes = [DHT(bootstrap=net.bootstrap) for _ in range(joiners)]
        try:
            for node in nodes:
                await node.start()
                await node.ready(timeout)
                status = await node.status()
                emit("joined", host=node.address[0], port=node.address[1],
                     id=status.id.hex() if status.id else None, table_size=len(status.table))
            everyone = [n.expected_id for n in net.nodes + nodes]
            for node in nodes:
                target = os.urandom(32)
                found = await asyncio.wait_for(node.find_node(target), timeout)
                best = sorted((i for i in everyone if i != node.expected_id),
                              key=lambda i: int.from_bytes(i, "big") ^ int.from_bytes(target, "big"))
                got = [r.id for r in found.closest]
                emit("lookup", origin=node.address[1], target=target.hex(), found=len(got),
                     closest=[r.address[1] for r in found.closest[:3]], exact=got == best[:20])
        finally:
            for node in nodes:
                await node.close()
    emit("close")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run_node.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="a TOML file; flags override it")
    parser.add_argument("--log-level", default="WARNING", help="stderr log level (default WARNING)")
    sub = parser.add_subparsers(dest="command", required=True)

    dht = sub.add_parser("dht", help="run one DHT node")
    dht.add_argument("--host", help="IPv4 address to bind (default 127.0.0.1)")
    dht.add_argument("--port", type=int, help="server port (default: any free port)")
    dht.add_argument("--bootstrap", help="host:port[,host:port...]; empty makes a bootstrapper")
    dht.add_argument("--mode", choices=["persistent", "adaptive", "ephemeral"],
                     help="persistent (default): join routing tables once reachable")
    dht.add_argument("--timeout", type=float, help="stop after this many seconds")

    net = sub.add_parser("testnet", help="run a local network of DHT nodes in this process")
    net.add_argument("--size", type=int, help="how many nodes (default 5)")
    net.add_argument("--host", help="IPv4 address to bind (default 127.0.0.1)")
    net.add_argument("--port", type=int, help="the bootstrapper's port (default: any free port)")
    net.add_argument("--timeout", type=float, help="stop after this many seconds")

    demo = sub.add_parser("demo", help="a local testnet, nodes joining it, lookups; then exit")
    demo.add_argument("--size", type=int, default=5, help="testnet nodes (default 5)")
    demo.add_argument("--joiners", type=int, default=3, help="nodes that join it (default 3)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        table = load_toml(args.config).get(args.command, {}) if args.config else {}
        flags = {k: v for k, v in vars(args).items()
                 if k not in ("config", "log_level", "command", "joiners")}
        if args.command == "demo":
            if not 1 <= args.size <= 100 or not 1 <= args.joiners <= 100:
                raise SettingsError("demo takes --size and --joiners from 1 to 100")
            asyncio.run(run_demo(args.size, args.joiners, timeout=30.0))
        elif args.command == "dht":
            if table.get("bootstrap") is None and flags.get("bootstrap") is None:
                raise SettingsError("dht needs --bootstrap (host:port list, or \"\" for a bootstrapper)")
            asyncio.run(run_dht(merge(DHTSettings(), table, flags)))
        else:
            asyncio.run(run_testnet(merge(TestnetSettings(), table, flags)))
    except SettingsError as exc:
        print(f"run_node.py: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"run_node.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
