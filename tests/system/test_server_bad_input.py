"""A listening Python server fed malformed handshakes: counted refusals, never a crash."""

from __future__ import annotations

import asyncio
import os

import pytest

from hyperswarm_hugin import DHT, GroupKey, KeyPair, Testnet
from hyperswarm_hugin.peer_connect import Server, connect
from hyperswarm_hugin.protocol.dht import messages as m
from hyperswarm_hugin.protocol.hyperdht import messages as h
from hyperswarm_hugin.protocol.hyperdht.payloads import NoisePayload, UdxInfo
from hyperswarm_hugin.protocol.hyperdht.signing import blake2b_256
from hyperswarm_hugin.protocol.noise import NoiseHandshake
from tests.system.udp_probe import UdpProbe

pytestmark = [pytest.mark.system, pytest.mark.timeout(60)]

GROUP = GroupKey.from_seed(b"bad input room")


def test_malformed_handshakes_are_refused_and_the_server_keeps_serving() -> None:
    async def run() -> None:
        net = await Testnet.create(4)
        async with net, DHT(bootstrap=net.bootstrap) as node, DHT(bootstrap=net.bootstrap) as other:
            await node.ready(10)
            await other.ready(10)
            server = Server(node.runtime, KeyPair.random(), group=GROUP)
            await server.listen()
            target = blake2b_256(server.key_pair.public_key)
            probe = await UdpProbe.open()
            try:
                def send(noise: bytes) -> None:
                    value = h.Handshake(h.FROM_CLIENT, noise).encode()
                    req = m.Request(tid=1, to=node.address, command=h.PEER_HANDSHAKE, target=target, value=value)
                    probe.send(req.encode(), node.address)

                client = KeyPair.random()
                mid = GROUP.sign(client.public_key)
                bad_payloads = [
                    NoisePayload(version=1, mid=mid).encode(),  # no udx
                    b"\x02\x00",  # version 2
                    NoisePayload(udx=UdxInfo(1), mid=mid).encode()[:-10],  # truncated
                ]
                for payload in bad_payloads:
                    send(NoiseHandshake(client, initiator=True,
                                        remote_public_key=server.key_pair.public_key).send(payload))
                for _ in range(20):
                    send(os.urandom(120))
                send(b"")
                # A round trip through the node: everything above has been handled by now.
                await probe.ping(node.address, tid=99)
            finally:
                probe.close()
            refused = server.stats.refused
            assert refused.get("incompatible", 0) + refused.get("bad-handshake", 0) >= 3
            assert server.stats.accepted == 0
            assert node.runtime.actor_failures == 0
            conn = await asyncio.wait_for(connect(other.runtime, KeyPair.random(), server.key_pair.public_key,
                                                  group=GROUP), 15)
            assert conn.remote_public_key == server.key_pair.public_key
            await conn.close()
            await server.close()

    asyncio.run(run())


def test_closing_a_server_takes_its_record_back() -> None:
    async def run() -> None:
        net = await Testnet.create(4)
        async with net, DHT(bootstrap=net.bootstrap) as node, DHT(bootstrap=net.bootstrap) as other:
            await node.ready(10)
            await other.ready(10)
            server = await node.listen(KeyPair.random(), group=GROUP)
            assert len(server.relays) == 3
            found = await other.find_peer(server.key_pair.public_key)
            assert found is not None and found.public_key == server.key_pair.public_key
            conn = await other.connect(server.key_pair.public_key, group=GROUP)
            conn.write(b"through the public API")
            [accepted] = list(server.connections)
            assert await asyncio.wait_for(accepted.read(), 10) == b"through the public API"
            await conn.close()
            await server.close()
            assert await other.find_peer(server.key_pair.public_key) is None

    asyncio.run(run())
