"""Blind relays between Python and Node (blind-relay 1.6 over Protomux): upstream hyperdht peers
through our relay server, and our Hugin peers through Node's blind-relay server.  Punching is
off on the server side (hyperdht's ``holepunch: false``), so the relay is the only path: the
test fails if pairing or the relayed stream does not work.  The group barrier stays end to end:
the relay is no member and sees the connection's packets only."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from hyperswarm_hugin import DHT, GroupKey, KeyPair
from hyperswarm_hugin.blind_relay import BlindRelayServer
from hyperswarm_hugin.connection import Connection
from hyperswarm_hugin.errors import ConnectError
from tests.interop.stdio_node import StdioNode
from tests.interop.test_dht_interop import parse, start_node_network
from tests.interop.test_hyperdht_connect import echo_server, node_peer, read
from tests.relay_upgrade import WINDOW, ProbeGate, Transfer

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

MIB = 1024 * 1024
GROUP = GroupKey.from_seed(os.urandom(32))


@asynccontextmanager
async def network() -> AsyncIterator[tuple[list[str], list[DHT]]]:
    """A Node network of 10 and three Python nodes: two firewalled peers and a relay node."""
    js, ready = await start_node_network("--nodes", "10", "--timeout", "110")
    bootstrap = parse(ready["bootstrap"])
    nodes = [DHT(bootstrap=bootstrap, mode="ephemeral", quick_firewall=False) for _ in range(2)]
    nodes.append(DHT(bootstrap=bootstrap))
    try:
        for node in nodes:
            await node.start()
            await node.ready(20)
        yield ready["bootstrap"], nodes
    finally:
        for node in nodes:
            await node.close()
        await asyncio.to_thread(js.close)


@asynccontextmanager
async def python_relay(node: DHT) -> AsyncIterator[tuple[BlindRelayServer, bytes]]:
    relay = BlindRelayServer(node.runtime)
    server = await node.listen(KeyPair.random(), on_connection=relay.accept)
    try:
        yield relay, server.key_pair.public_key
    finally:
        await relay.close()
        await server.close()


@asynccontextmanager
async def node_relay(bootstrap: list[str]) -> AsyncIterator[tuple[StdioNode, bytes]]:
    with StdioNode("relay_server.js", "--bootstrap", ",".join(bootstrap), "--timeout", "100") as js:
        ready = await read(js, "relay")
        yield js, bytes.fromhex(ready["publicKey"])


def test_node_peers_pair_through_a_python_relay() -> None:
    async def run() -> None:
        async with network() as (bootstrap, nodes), python_relay(nodes[2]) as (relay, key):
            with node_peer(bootstrap, "server", os.urandom(32), impl="upstream", punch="1", holepunch="0") as srv:
                server_key = (await read(srv, "listening"))["publicKey"]
                with node_peer(bootstrap, "client", os.urandom(32), impl="upstream", punch="1",
                               relay_through=key.hex(), remote=server_key, bytes=str(MIB)) as cli:
                    await read(cli, "open")
                    echoed = await read(cli, "echoed")
                    assert echoed["ok"] and echoed["bytes"] == MIB
            assert relay.stats.pairings_matched == 1
            assert nodes[2].runtime.streams.relayed_packets > MIB // 1500  # the bytes went through us

    asyncio.run(run())


def test_python_peers_pair_through_a_node_relay_and_keep_the_barrier() -> None:
    async def run() -> None:
        async with network() as (bootstrap, nodes), node_relay(bootstrap) as (js, key):
            conns: asyncio.Queue[Connection] = asyncio.Queue()
            server = await nodes[0].listen(KeyPair.random(), group=GROUP, on_connection=conns.put_nowait,
                                           share_local_address=False, holepunch=False)
            echo = asyncio.create_task(echo_server(conns))
            conn = await asyncio.wait_for(nodes[1].connect(server.key_pair.public_key, group=GROUP,
                                                           local_connection=False, relay_through=key), 30)
            assert conn.relayed and not conn.holepunched
            payload = os.urandom(MIB)
            received = bytearray()
            for offset in range(0, MIB, 16384):
                conn.write(payload[offset:offset + 16384])
                await conn.drain()
            while len(received) < MIB:
                received.extend(await asyncio.wait_for(conn.read(), 30))
            assert bytes(received) == payload
            conn.end()
            await asyncio.wait_for(echo, 30)
            assert server.stats.relayed == 1
            assert (await read(js, "pair"))["event"] == "pair"
            # Another group's client asking through the same relay is refused at the handshake.
            other = GroupKey.from_seed(os.urandom(32))
            with pytest.raises(ConnectError):
                await asyncio.wait_for(nodes[1].connect(server.key_pair.public_key, group=other,
                                                        local_connection=False, relay_through=key), 30)
            await conn.close()
            await server.close()

    asyncio.run(run())


def test_python_peers_pair_through_a_python_relay_when_punching_is_off() -> None:
    async def run() -> None:
        async with network() as (_, nodes), python_relay(nodes[2]) as (relay, key):
            conns: asyncio.Queue[Connection] = asyncio.Queue()
            server = await nodes[0].listen(KeyPair.random(), group=GROUP, on_connection=conns.put_nowait,
                                           share_local_address=False, relay_through=key, holepunch=False)
            echo = asyncio.create_task(echo_server(conns))
            conn = await asyncio.wait_for(nodes[1].connect(server.key_pair.public_key, group=GROUP,
                                                           local_connection=False), 30)
            assert conn.relayed  # the server chose the relay: we were paired as its responder
            conn.write(b"through the relay")
            assert await asyncio.wait_for(conn.read(), 10) == b"through the relay"
            conn.end()
            await asyncio.wait_for(echo, 10)
            assert relay.stats.pairings_matched == 1 and server.stats.relayed == 1
            await conn.close()
            await server.close()

    asyncio.run(run())


AFTER_SWITCH = 1024 * 1024  # bytes echoed over the direct path before a test ends


def test_a_python_client_moves_from_a_relay_to_the_punched_path_of_a_node_server() -> None:
    """hyperdht 6.34 keeps punching behind a relay and moves the stream (udx changeRemote): our
    client does the same against an upstream Node server, which follows us to the direct path.
    Our client hears no probe until the relay carried bytes both ways (a gate on its puncher
    sockets), so the relay comes first; the bytes flow across the switch, sha256 checked."""

    async def run() -> None:
        async with network() as (bootstrap, nodes), python_relay(nodes[2]) as (relay, key):
            gate = ProbeGate(nodes[1], sending=False)
            with node_peer(bootstrap, "server", os.urandom(32), impl="upstream", punch="1") as srv:
                server_key = bytes.fromhex((await read(srv, "listening"))["publicKey"])
                conn = await asyncio.wait_for(nodes[1].connect(server_key, local_connection=False,
                                                               relay_through=key), 30)
                assert conn.relayed and not conn.holepunched
                transfer = Transfer(conn)
                tasks = [asyncio.create_task(transfer.write()), asyncio.create_task(transfer.read())]
                try:
                    await asyncio.wait_for(transfer.echoed_at_least(WINDOW), 30)
                    assert conn.relayed and relay.stats.pairings_matched == 1
                    gate.is_open = True
                    await asyncio.wait_for(conn.wait_direct(), 30)
                    assert conn.holepunched
                    direct = await read(srv, "direct")  # Node's stream moved too
                    assert (direct["remoteHost"], direct["remotePort"]) != conn.route[1]  # (to our puncher)
                    await asyncio.wait_for(transfer.echoed_at_least(transfer.echoed + AFTER_SWITCH), 30)
                    transfer.stopping = True
                    await asyncio.wait_for(asyncio.gather(*tasks), 30)
                finally:
                    for task in tasks:
                        task.cancel()
                assert transfer.intact
                assert gate.dropped > 0
                await conn.close()

    asyncio.run(run())


def test_a_node_client_moves_from_a_relay_to_the_punched_path_of_a_python_server() -> None:
    """The other way round: an upstream Node client pairs through our relay, punches on, finds
    our server's puncher once our probes are let out, and moves; our server follows the first
    packet that arrives on its puncher socket and lets the relay go."""

    async def run() -> None:
        async with network() as (bootstrap, nodes), python_relay(nodes[2]) as (relay, key):
            gate = ProbeGate(nodes[0], sending=True)
            conns: asyncio.Queue[Connection] = asyncio.Queue()
            server = await nodes[0].listen(KeyPair.random(), on_connection=conns.put_nowait,
                                           share_local_address=False)
            with node_peer(bootstrap, "client", os.urandom(32), impl="upstream", punch="1", until_direct="1",
                           relay_through=key.hex(), remote=server.key_pair.public_key.hex(),
                           bytes=str(AFTER_SWITCH)) as cli:
                await read(cli, "open")
                accepted = await asyncio.wait_for(conns.get(), 30)  # its first packet came through the relay
                assert accepted.relayed and relay.stats.pairings_matched == 1
                conns.put_nowait(accepted)
                echo = asyncio.create_task(echo_server(conns))
                gate.is_open = True
                await read(cli, "direct")
                await asyncio.wait_for(accepted.wait_direct(), 30)
                assert accepted.holepunched
                echoed = await read(cli, "echoed")
                assert echoed["ok"] and echoed["bytes"] > AFTER_SWITCH
                await read(cli, "close")
            await asyncio.wait_for(echo, 30)
            assert server.stats.relayed == 1 and server.stats.upgraded == 1
            assert gate.dropped > 0
            await server.close()

    asyncio.run(run())
