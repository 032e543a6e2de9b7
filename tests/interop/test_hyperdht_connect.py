"""hyperdht connections between Python and Node hyperdht-hugin / upstream hyperdht peers on a
mixed loopback network (a Node testnet with Python nodes in it): echo 1 MiB both arrangements,
and the refused cases, each bounded in time, while the server keeps serving good peers."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from hyperswarm_hugin import DHT, GroupKey, KeyPair, Testnet
from hyperswarm_hugin.connection import Connection
from hyperswarm_hugin.errors import ConnectError, ServerRefused
from hyperswarm_hugin.peer_connect import Server, connect
from tests.interop.stdio_node import StdioNode
from tests.interop.test_dht_interop import parse, start_node_network

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

MIB = 1024 * 1024
GROUP_SEED = os.urandom(32)
GROUP = GroupKey.from_seed(GROUP_SEED)
OTHER_SEED = os.urandom(32)
# A refused client waits for a silent server: 3 transmissions, 1 s apart, through each of at
# most 2 relays (peer_connect.HANDSHAKE_RETRIES), plus the lookup.
REFUSAL_BOUND = 10.0


async def read(js: StdioNode, event: str, deadline: float = 30.0) -> dict[str, Any]:
    while True:
        found = await asyncio.to_thread(js.read, deadline)
        if found["event"] == event:
            return found
        if found["event"] == "error" and event != "error":
            raise AssertionError(f"Node peer failed: {found}")


@asynccontextmanager
async def network() -> AsyncIterator[tuple[list[str], DHT]]:
    js, ready = await start_node_network("--nodes", "5", "--timeout", "110")
    node = DHT(bootstrap=parse(ready["bootstrap"]))
    try:
        await node.start()
        await node.ready(20)
        yield ready["bootstrap"], node
    finally:
        await node.close()
        await asyncio.to_thread(js.close)


def node_peer(bootstrap: list[str], role: str, seed: bytes, **flags: str) -> StdioNode:
    args = ["--bootstrap", ",".join(bootstrap), "--role", role, "--seed", seed.hex()]
    for key, value in flags.items():
        args += [f"--{key.replace('_', '-')}", value]
    return StdioNode("hyperdht_peer.js", *args)


async def check_echo(conn: Connection, size: int) -> None:
    """Write ``size`` random bytes in 16 KiB messages and check the echo that comes back."""
    payload = os.urandom(size)
    received = bytearray()

    async def reader() -> None:
        async for message in conn:
            received.extend(message)
            if len(received) >= len(payload):
                return

    task = asyncio.create_task(reader())
    for offset in range(0, size, 16384):
        conn.write(payload[offset:offset + 16384])
        await conn.drain()
    await asyncio.wait_for(task, 30)
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()


async def echo_server(server_conns: asyncio.Queue[Connection]) -> None:
    conn = await server_conns.get()
    async for message in conn:
        conn.write(message)
        await conn.drain()
    conn.end()


def test_node_hugin_client_echoes_through_a_python_server() -> None:
    async def run() -> None:
        async with network() as (bootstrap, dht):
            conns: asyncio.Queue[Connection] = asyncio.Queue()
            server = Server(dht.runtime, KeyPair.random(), group=GROUP, on_connection=conns.put_nowait)
            await server.listen()
            echo = asyncio.create_task(echo_server(conns))
            with node_peer(bootstrap, "client", os.urandom(32), group=GROUP_SEED.hex(),
                           remote=server.key_pair.public_key.hex(), bytes=str(MIB)) as js:
                opened = await read(js, "open")
                echoed = await read(js, "echoed")
                assert echoed["ok"] and echoed["bytes"] == MIB
                assert opened["remotePublicKey"] == server.key_pair.public_key.hex()
                await read(js, "close")  # both sides ended: the clean close before Node exits
            await asyncio.wait_for(echo, 30)
            assert server.stats.accepted == 1
            await server.close()

    asyncio.run(run())


def test_python_client_echoes_through_a_node_hugin_server() -> None:
    async def run() -> None:
        async with network() as (bootstrap, dht):
            seed = os.urandom(32)
            with node_peer(bootstrap, "server", seed, group=GROUP_SEED.hex()) as js:
                listening = await read(js, "listening")
                server_key = bytes.fromhex(listening["publicKey"])
                me = KeyPair.random()
                conn = await asyncio.wait_for(connect(dht.runtime, me, server_key, group=GROUP), 15)
                assert conn.remote_public_key == server_key
                assert (await read(js, "connection"))["remotePublicKey"] == me.public_key.hex()
                await check_echo(conn, MIB)
                await conn.close()

    asyncio.run(run())


@pytest.mark.parametrize(("impl", "reason"), [("hugin", "bad-mid"), ("upstream", "missing-mid")])
def test_node_clients_without_our_group_are_refused_by_python(impl: str, reason: str) -> None:
    async def run() -> None:
        async with network() as (bootstrap, dht):
            conns: asyncio.Queue[Connection] = asyncio.Queue()
            server = Server(dht.runtime, KeyPair.random(), group=GROUP, on_connection=conns.put_nowait)
            await server.listen()
            flags = {"group": OTHER_SEED.hex()} if impl == "hugin" else {"impl": "upstream"}
            started = time.monotonic()
            with node_peer(bootstrap, "client", os.urandom(32), remote=server.key_pair.public_key.hex(),
                           bytes="10", timeout="40", **flags) as js:
                error = await read(js, "error", 40)
                assert error["code"] == "PEER_CONNECTION_FAILED"
                assert error["ms"] < 30_000  # Node's own client gives up on a silent server
            assert server.stats.accepted == 0 and server.stats.refused.get(reason, 0) >= 1
            # Meanwhile (and after) a member on another node still gets in.
            async with DHT(bootstrap=parse(bootstrap)) as other:
                await other.ready(20)
                member = await asyncio.wait_for(connect(other.runtime, KeyPair.random(),
                                                        server.key_pair.public_key, group=GROUP), 15)
                got = await asyncio.wait_for(conns.get(), 10)
                member.write(b"still serving")
                assert await asyncio.wait_for(got.read(), 10) == b"still serving"
                await member.close()
            await server.close()
            assert time.monotonic() - started < 40

    asyncio.run(run())


@pytest.mark.parametrize(("our_group", "reason"), [(GROUP, "bad-mid"), (None, "missing-mid")])
def test_python_client_refused_by_a_node_hugin_server_within_the_bound(our_group: GroupKey | None,
                                                                        reason: str) -> None:
    async def run() -> None:
        async with network() as (bootstrap, dht):
            with node_peer(bootstrap, "server", os.urandom(32), group=OTHER_SEED.hex()) as js:
                server_key = bytes.fromhex((await read(js, "listening"))["publicKey"])
                started = time.monotonic()
                with pytest.raises(ConnectError, match="PEER_CONNECTION_FAILED"):
                    await connect(dht.runtime, KeyPair.random(), server_key, group=our_group)
                assert time.monotonic() - started < REFUSAL_BOUND
                assert (await read(js, "refused"))["reason"] == reason

    asyncio.run(run())


def test_python_client_fails_at_once_on_a_server_whose_mid_is_bad() -> None:
    async def run() -> None:
        async with network() as (bootstrap, dht):
            # A bare hyperdht-hugin server without the firewall accepts anyone, but its mid is
            # signed by another group: our client must say so at once.
            with node_peer(bootstrap, "server", os.urandom(32), group=OTHER_SEED.hex(), firewall="0") as js:
                server_key = bytes.fromhex((await read(js, "listening"))["publicKey"])
                started = time.monotonic()
                with pytest.raises(ServerRefused, match="not signed by our group"):
                    await connect(dht.runtime, KeyPair.random(), server_key, group=GROUP)
                assert time.monotonic() - started < 2.0

    asyncio.run(run())


def test_python_nodes_relay_handshakes_between_node_peers() -> None:
    async def run() -> None:
        async with await Testnet.create(5) as net:
            bootstrap = [f"{h}:{p}" for h, p in net.bootstrap]
            with node_peer(bootstrap, "server", os.urandom(32), group=GROUP_SEED.hex()) as server:
                server_key = (await read(server, "listening"))["publicKey"]
                with node_peer(bootstrap, "client", os.urandom(32), group=GROUP_SEED.hex(), remote=server_key,
                               bytes=str(64 * 1024)) as client:
                    echoed = await read(client, "echoed")
                    assert echoed["ok"]
                    await read(client, "close")
                await read(server, "connection")

    asyncio.run(run())
