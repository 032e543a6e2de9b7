"""10,000 random and mutated datagrams at a running node; it must keep answering."""

from __future__ import annotations

import asyncio
import random

import pytest

from hyperswarm_hugin import Testnet
from hyperswarm_hugin.protocol.dht import messages as m
from hyperswarm_hugin.protocol.encoding import encode_ipv4_address
from tests.mutation import mutate as mutate_bytes
from tests.system.udp_probe import UdpProbe

pytestmark = [pytest.mark.system, pytest.mark.timeout(90)]

BATCH = 100  # small enough for the kernel's default UDP receive buffer
TOTAL = 10_000


def mutate(data: bytes, rng: random.Random) -> bytes:
    buf = mutate_bytes(data, rng)
    # Never let a mutation turn into a PING_NAT or DELAYED_PING aimed at other ports.
    if len(buf) > 10 and buf[0] == 0x03:
        buf[1] = buf[1] | 0x04 if rng.random() < 0.5 else buf[1]
    return bytes(buf)


def valid_datagrams(to: tuple[str, int], rng: random.Random) -> list[bytes]:
    target = rng.randbytes(32)
    return [
        m.Request(tid=1, to=to, command=m.PING, internal=True).encode(),
        m.Request(tid=2, to=to, command=m.FIND_NODE, internal=True, target=target).encode(),
        m.Request(tid=3, to=to, command=m.DOWN_HINT, internal=True,
                  value=encode_ipv4_address(("127.0.0.1", 9))).encode(),
        m.Request(tid=4, to=to, command=7, target=target, token=rng.randbytes(32),
                  value=rng.randbytes(40)).encode(),
        m.Response(tid=5, to=to, id=rng.randbytes(32), closer_nodes=[to, ("127.0.0.1", 7)],
                   error=1, value=b"x").encode(),
    ]


async def fuzz() -> None:
    rng = random.Random(20261124)
    async with await Testnet.create(3) as net:
        node = net.nodes[1]
        target = node.address
        probe = await UdpProbe.open()
        try:
            seeds = valid_datagrams(target, rng)
            for batch_start in range(0, TOTAL, BATCH):
                for i in range(BATCH):
                    if (batch_start + i) % 2:
                        data = rng.randbytes(rng.randint(0, 1500))
                    else:
                        data = mutate(rng.choice(seeds), rng)
                    probe.send(data, target)
                # A ping answered after the batch: the node kept up and still serves.
                reply = await probe.ping(target, tid=0xF000 + batch_start // BATCH)
                assert reply.error == m.OK
            status = await node.status()
            assert status.stats["dropped_malformed"] > TOTAL // 3
            assert node.runtime.actor_failures == 0
            # And its DHT still works for the others.
            found = await net.nodes[2].find_node(rng.randbytes(32))
            assert node.expected_id in [r.id for r in found.closest]
        finally:
            probe.close()


def test_node_survives_random_and_mutated_datagrams() -> None:
    asyncio.run(fuzz())
