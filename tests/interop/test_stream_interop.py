"""UDX + secret-stream between Python and Node's udx-native + @hyperswarm/secret-stream.

64 MiB each way with sha256 checked at both ends, clean ends, destroys seen across, and
the same transfers through a relay that drops 3 %, duplicates 1 % and reorders.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from hyperswarm_hugin.actors.runtime import NodeRuntime, RuntimeConfig
from hyperswarm_hugin.connection import Connection, ConnectionClosed
from hyperswarm_hugin.protocol.dht.node import NodeOptions
from hyperswarm_hugin.protocol.hugin import KeyPair
from hyperswarm_hugin.protocol.noise import HandshakeResult, NoiseHandshake
from tests.interop.lossy_relay import LossyRelay
from tests.interop.stdio_node import StdioNode

pytestmark = [pytest.mark.interop, pytest.mark.timeout(240)]

MIB = 1024 * 1024


def handshake_pair() -> tuple[HandshakeResult, HandshakeResult]:
    a, b = KeyPair.random(), KeyPair.random()
    ini = NoiseHandshake(a, initiator=True, remote_public_key=b.public_key)
    res = NoiseHandshake(b, initiator=False)
    res.recv(ini.send(b""))
    ini.recv(res.send(b""))
    assert ini.result is not None and res.result is not None
    return ini.result, res.result


async def read_event(js: StdioNode, deadline: float = 120.0) -> dict[str, Any]:
    return await asyncio.to_thread(js.read, deadline)


async def wait_event(js: StdioNode, name: str, deadline: float = 120.0) -> dict[str, Any]:
    while True:
        event = await read_event(js, deadline)
        if event["event"] == name:
            return event


@asynccontextmanager
async def python_and_node(mode: str, *, nbytes: int = 0, relay: LossyRelay | None = None,
                          python_initiates: bool = True) -> AsyncIterator[tuple[Connection, StdioNode]]:
    runtime = NodeRuntime(RuntimeConfig(options=NodeOptions(bootstrap=[], ephemeral=True)))
    await runtime.start()
    transport = runtime.create_stream()
    ours, theirs = handshake_pair()
    if not python_initiates:
        ours, theirs = theirs, ours
    node_id = random.getrandbits(32)
    py_address = relay.address("b") if relay else runtime.server_address
    js = StdioNode("udx_peer.js", "--id", str(node_id), "--remote-id", str(transport.id),
                   "--remote-port", str(py_address[1]), "--initiator", "0" if python_initiates else "1",
                   "--tx", theirs.tx.hex(), "--rx", theirs.rx.hex(), "--hash", theirs.hash.hex(),
                   "--mode", mode, "--bytes", str(nbytes))
    try:
        ready = await read_event(js, 30)
        node_address = ("127.0.0.1", ready["port"])
        if relay:
            relay.set_peer("a", runtime.server_address)
            relay.set_peer("b", node_address)
            transport.connect(node_id, relay.address("a"))
        else:
            transport.connect(node_id, node_address)
        conn = Connection(transport, ours)
        yield conn, js
    finally:
        await asyncio.to_thread(js.close)
        await runtime.close()


async def python_sends(total: int, relay: LossyRelay | None = None) -> None:
    async with python_and_node("sink", relay=relay) as (conn, js):
        digest = hashlib.sha256()
        rng = random.Random(5)
        sent = 0
        while sent < total:
            chunk = rng.randbytes(min(64 * 1024, total - sent))
            digest.update(chunk)
            conn.write(chunk)
            sent += len(chunk)
            await conn.drain()
        conn.end()
        done = await wait_event(js, "done")
        assert done["bytes"] == total
        assert done["sha256"] == digest.hexdigest()
        assert await asyncio.wait_for(conn.read(), 30) == b""  # Node ended in reply
        await asyncio.wait_for(conn.wait_closed(), 30)
        assert conn.error is None
        assert (await wait_event(js, "close"))["event"] == "close"


async def node_sends(total: int, relay: LossyRelay | None = None) -> None:
    async with python_and_node("source", nbytes=total, relay=relay, python_initiates=False) as (conn, js):
        digest = hashlib.sha256()
        received = 0
        async for message in conn:
            digest.update(message)
            received += len(message)
        sent = await wait_event(js, "sent")
        assert received == sent["bytes"] == total
        assert digest.hexdigest() == sent["sha256"]
        conn.end()
        await asyncio.wait_for(conn.wait_closed(), 30)
        assert conn.error is None
        await wait_event(js, "close")


def test_python_sends_64_mib_to_node() -> None:
    asyncio.run(python_sends(64 * MIB))


def test_node_sends_64_mib_to_python() -> None:
    asyncio.run(node_sends(64 * MIB))


def test_through_a_lossy_relay_python_to_node() -> None:
    async def run() -> None:
        relay = await LossyRelay(seed=11).start()
        try:
            await python_sends(64 * MIB, relay)
            assert relay.stats.dropped > 100 and relay.stats.duplicated > 10 and relay.stats.reordered > 10
        finally:
            relay.close()

    asyncio.run(run())


def test_through_a_lossy_relay_node_to_python() -> None:
    async def run() -> None:
        relay = await LossyRelay(seed=12).start()
        try:
            await node_sends(64 * MIB, relay)
            assert relay.stats.dropped > 100 and relay.stats.duplicated > 10 and relay.stats.reordered > 10
        finally:
            relay.close()

    asyncio.run(run())


def test_messages_keep_their_boundaries_both_ways() -> None:
    async def run() -> None:
        async with python_and_node("echo") as (conn, _js):
            sizes = [1, 5, 1151, 1152, 1153, 70_000, 3, 200_000, 17]
            for size in sizes:
                conn.write(os.urandom(size))
            echoed = [len(await asyncio.wait_for(conn.read(), 30)) for _ in sizes]
            assert echoed == sizes
            conn.end()
            assert await asyncio.wait_for(conn.read(), 30) == b""

    asyncio.run(run())


def test_python_destroy_is_seen_by_node() -> None:
    async def run() -> None:
        async with python_and_node("echo") as (conn, js):
            conn.write(b"hello")
            assert await asyncio.wait_for(conn.read(), 30) == b"hello"
            conn.destroy()
            error = await wait_event(js, "error", 30)
            assert error["error"] == "ECONNRESET"
            await wait_event(js, "close", 30)
            with pytest.raises(ConnectionClosed):
                conn.write(b"after")

    asyncio.run(run())


def test_node_destroy_is_seen_by_python() -> None:
    async def run() -> None:
        async with python_and_node("echo") as (conn, js):
            conn.write(b"ping")
            assert await asyncio.wait_for(conn.read(), 30) == b"ping"
            js.send({"cmd": "destroy"})
            with pytest.raises(ConnectionClosed) as failure:
                await asyncio.wait_for(conn.read(), 30)
            assert isinstance(failure.value.__cause__, ConnectionResetError)
            assert conn.closed

    asyncio.run(run())
