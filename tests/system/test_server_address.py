"""A reachable server advertises where its server socket is seen, never its client socket's port
or 0.0.0.0 (dht-rpc's ``remoteAddress``: the sampled port must be the server socket's)."""

from __future__ import annotations

import asyncio

import pytest

from hyperswarm_hugin import DHT, KeyPair, Testnet
from hyperswarm_hugin.peer_connect import public_address

pytestmark = [pytest.mark.system, pytest.mark.timeout(60)]


def test_an_unfirewalled_ephemeral_node_does_not_advertise_its_client_port() -> None:
    async def run() -> None:
        async with await Testnet.create(5) as net:
            node = DHT(bootstrap=net.bootstrap, mode="ephemeral")
            await node.start()
            try:
                await node.ready(20)
                status = await node.status()
                assert not status.firewalled  # the quick check passed on loopback
                assert status.public_address is not None
                sampled_port = status.public_address[1]
                assert sampled_port == node.runtime.client_address[1]  # samples of the client socket
                server = await node.listen(KeyPair.random())
                assert public_address(status, node.address[1]) is None
                assert all(port != sampled_port for _, port in server.relay_addresses)
                await server.close()
            finally:
                await node.close()

    asyncio.run(run())


def test_a_persistent_node_advertises_its_server_socket() -> None:
    async def run() -> None:
        async with await Testnet.create(5) as net:
            node = DHT(bootstrap=net.bootstrap, firewalled=False)
            await node.start()
            try:
                await node.ready(20)
                persistent = asyncio.get_running_loop().create_future()
                node.on_event(lambda ev: persistent.done() or type(ev).__name__ != "NodeBecamePersistent"
                              or persistent.set_result(ev))
                status = await node.status()
                if status.ephemeral:
                    await asyncio.wait_for(persistent, 30)
                    status = await node.status()
                assert public_address(status, node.address[1]) == node.address
                server = await node.listen(KeyPair.random())
                assert server.relay_addresses[0] == node.address
                await server.close()
            finally:
                await node.close()

    asyncio.run(run())
