#!/usr/bin/env python3
"""The Python twin of tests/interop/node/udx_peer.js, for bench/stream.py.

Same arguments and JSON lines: one end of a secret-stream connection on our UDX stream,
as sink, source, echo or ping.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hyperswarm_hugin import event_loop
from hyperswarm_hugin.actors.runtime import NodeRuntime, RuntimeConfig
from hyperswarm_hugin.connection import Connection
from hyperswarm_hugin.protocol.dht.node import NodeOptions
from hyperswarm_hugin.protocol.noise import HandshakeResult

POOL = 8 * 1024 * 1024


def emit(event: str, **fields: object) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


async def main(args: argparse.Namespace) -> None:
    runtime = NodeRuntime(RuntimeConfig(options=NodeOptions(bootstrap=[], ephemeral=True)))
    await runtime.start()
    transport = runtime.create_stream(local_id=args.id)
    if args.wait_first:
        transport.connect(args.remote_id)
    else:
        transport.connect(args.remote_id, (args.remote_host, args.remote_port))
    handshake = HandshakeResult(args.initiator == 1, bytes(32), bytes(32), bytes.fromhex(args.tx),
                                bytes.fromhex(args.rx), bytes.fromhex(args.hash))
    conn = Connection(transport, handshake)
    emit("ready", port=runtime.server_address[1], id=args.id)
    try:
        if args.mode == "sink":
            digest = hashlib.sha256()
            received = 0
            first = 0.0
            async for message in conn:
                if not received:
                    first = time.perf_counter()
                received += len(message)
                digest.update(message)
            emit("done", bytes=received, sha256=digest.hexdigest(), seconds=time.perf_counter() - first)
            conn.end()
        elif args.mode == "source":
            digest = hashlib.sha256()
            sent = 0
            # Slices of one random pool: os.urandom runs at ~300 MB/s here (Node's randomBytes at
            # ~1.2 GB/s), which would cap the sender, not the stream.
            pool = os.urandom(POOL + 65536)
            while sent < args.bytes:
                offset = (sent * 7919) % POOL
                chunk = pool[offset:offset + min(65536, args.bytes - sent)]
                digest.update(chunk)
                conn.write(chunk)
                sent += len(chunk)
                await conn.drain()
            stream = transport.stream
            emit("sent", bytes=sent, sha256=digest.hexdigest(), retransmits=stream.stats_retransmits,
                 rto=stream.stats_rto, slow_start_exits=stream.stats_slow_start_exits, cwnd=stream.cwnd,
                 srtt=stream.srtt, mtu=stream.path_mtu.mtu, probes=stream.path_mtu.probes_sent)
            conn.end()
            while await conn.read():
                pass
        elif args.mode == "echo":
            async for message in conn:
                conn.write(message)
            conn.end()
        elif args.mode == "ping":
            rtts = []
            payload = bytes([7]) * 32
            for _ in range(args.count):
                start = time.perf_counter()
                conn.write(payload)
                await conn.read()
                rtts.append((time.perf_counter() - start) * 1000)
            rtts.sort()
            emit("pings", count=args.count, median_ms=rtts[len(rtts) // 2], p99_ms=rtts[int(len(rtts) * 0.99)])
            conn.end()
            while await conn.read():
                pass
        await asyncio.wait_for(conn.wait_closed(), 30)
        emit("close", received=0)
    finally:
        await runtime.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--id", type=int, required=True)
    parser.add_argument("--remote-id", type=int, required=True)
    parser.add_argument("--remote-port", type=int, default=0)
    parser.add_argument("--remote-host", default="127.0.0.1")
    parser.add_argument("--initiator", type=int, default=1)
    parser.add_argument("--tx", required=True)
    parser.add_argument("--rx", required=True)
    parser.add_argument("--hash", required=True)
    parser.add_argument("--mode", choices=["sink", "source", "echo", "ping"], default="sink")
    parser.add_argument("--bytes", type=int, default=0)
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--wait-first", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=300)
    parsed = parser.parse_args()
    event_loop.run(asyncio.wait_for(main(parsed), parsed.timeout))
