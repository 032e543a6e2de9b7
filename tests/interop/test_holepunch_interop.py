"""NAT holepunching between Python and Node hyperdht-hugin peers, forced on one host as
hyperdht's own "force holepunch" test does (ephemeral nodes without the quick firewall check
stay firewalled; servers keep their local addresses to themselves; clients take no local
connection).  The PEER_HOLEPUNCH rounds, their encryption and tokens, NAT sampling from the
puncher sockets and the probes all run for real; only the NATs are absent (the NAT lab in
tests/natlab adds them)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from hyperswarm_hugin import DHT, GroupKey, KeyPair
from hyperswarm_hugin.connection import Connection
from tests.interop.test_dht_interop import parse, start_node_network
from tests.interop.test_hyperdht_connect import check_echo, echo_server, node_peer, read

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

MIB = 1024 * 1024
GROUP_SEED = os.urandom(32)
GROUP = GroupKey.from_seed(GROUP_SEED)


@asynccontextmanager
async def punching_node() -> AsyncIterator[tuple[list[str], DHT]]:
    """A Node hyperdht network of 10 and one firewalled, ephemeral Python node in it."""
    js, ready = await start_node_network("--nodes", "10", "--timeout", "110")
    node = DHT(bootstrap=parse(ready["bootstrap"]), mode="ephemeral", quick_firewall=False)
    try:
        await node.start()
        await node.ready(20)
        assert (await node.status()).firewalled
        yield ready["bootstrap"], node
    finally:
        await node.close()
        await asyncio.to_thread(js.close)


@pytest.mark.parametrize("fast_open", ["1", "0"])
def test_node_hugin_client_holepunches_to_a_python_server(fast_open: str) -> None:
    """With fast open the client's first probe already finds the server's puncher; without it
    only the holepunch rounds (answered by our server) make the path."""

    async def run() -> None:
        async with punching_node() as (bootstrap, dht):
            conns: asyncio.Queue[Connection] = asyncio.Queue()
            server = await dht.listen(KeyPair.random(), group=GROUP, on_connection=conns.put_nowait,
                                      share_local_address=False)
            echo = asyncio.create_task(echo_server(conns))
            with node_peer(bootstrap, "client", os.urandom(32), group=GROUP_SEED.hex(), punch="1",
                           fast_open=fast_open, remote=server.key_pair.public_key.hex(), bytes=str(MIB)) as js:
                await read(js, "open")
                echoed = await read(js, "echoed")
                assert echoed["ok"] and echoed["bytes"] == MIB
                await read(js, "close")
            await asyncio.wait_for(echo, 30)
            assert server.stats.accepted == 1
            assert server.stats.holepunched == 1  # the stream found us on a puncher socket
            await server.close()

    asyncio.run(run())


@pytest.mark.parametrize("fast_open", [True, False])
def test_python_client_holepunches_to_a_node_hugin_server(fast_open: bool) -> None:
    async def run() -> None:
        async with punching_node() as (bootstrap, dht):
            with node_peer(bootstrap, "server", os.urandom(32), group=GROUP_SEED.hex(), punch="1") as js:
                server_key = bytes.fromhex((await read(js, "listening"))["publicKey"])
                me = KeyPair.random()
                conn = await asyncio.wait_for(
                    dht.connect(server_key, me, group=GROUP, local_connection=False, fast_open=fast_open), 20)
                assert conn.remote_public_key == server_key
                assert conn.holepunched
                assert (await read(js, "connection"))["remotePublicKey"] == me.public_key.hex()
                await check_echo(conn, MIB)
                await conn.close()

    asyncio.run(run())


@pytest.mark.parametrize("fast_open", [True, False])
def test_python_peers_holepunch_to_each_other(fast_open: bool) -> None:
    async def run() -> None:
        async with punching_node() as (bootstrap, server_dht):
            client_dht = DHT(bootstrap=parse(bootstrap), mode="ephemeral", quick_firewall=False)
            await client_dht.start()
            try:
                await client_dht.ready(20)
                conns: asyncio.Queue[Connection] = asyncio.Queue()
                server = await server_dht.listen(KeyPair.random(), group=GROUP, on_connection=conns.put_nowait,
                                                 share_local_address=False)
                echo = asyncio.create_task(echo_server(conns))
                conn = await asyncio.wait_for(
                    client_dht.connect(server.key_pair.public_key, group=GROUP, local_connection=False,
                                       fast_open=fast_open), 20)
                assert conn.holepunched
                conn.write(b"through the punched path")
                assert await asyncio.wait_for(conn.read(), 10) == b"through the punched path"
                conn.end()
                await asyncio.wait_for(echo, 10)
                assert server.stats.holepunched == 1
                await conn.close()
                await server.close()
            finally:
                await client_dht.close()

    asyncio.run(run())
