"""A listening server replaces a relay that died within seconds (issue 17 item 5): it pings its
relays every 3 s and announces again when fewer than three answer, as hyperdht-hugin does; the
relay that stopped answering is no longer offered from that ping round on."""

from __future__ import annotations

import asyncio

import pytest

from hyperswarm_hugin import DHT, KeyPair, Testnet
from hyperswarm_hugin.protocol.dht.node import REQUEST_TIMEOUT
from hyperswarm_hugin.protocol.hyperdht.announcer import PING_INTERVAL, RELAY_PING_RETRIES
from hyperswarm_hugin.protocol.hyperdht.payloads import RelayInfo

pytestmark = [pytest.mark.system, pytest.mark.timeout(90)]

DROP_DEADLINE = PING_INTERVAL + (RELAY_PING_RETRIES + 1) * REQUEST_TIMEOUT + 4.0
"""A ping round starts within 3 s, its dead relay is silent 2 s later; 4 s to spare for a loaded
machine.  Before, the dead relay stayed offered until the new announce ended: its ping's four
tries and, in a network this small, the walk waiting out the dead node's six tries (>= 10 s)."""
RECOVERY_DEADLINE = 25.0


def test_a_server_replaces_a_dead_relay_within_seconds() -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        net = await Testnet.create(8)
        async with net, DHT(bootstrap=net.bootstrap) as node:
            await node.ready(10)
            server = await node.listen(KeyPair.random())
            try:
                assert len(server.relays) == 3
                dead = server.relays[0].relay_address
                by_address = {n.address: n for n in net.nodes}
                victim = by_address[dead]  # the relays are nodes of the testnet: nobody else is up
                other = next(n for a, n in by_address.items() if a != dead)
                dropped, replaced = asyncio.Event(), asyncio.Event()
                announcer = server._announcer
                assert announcer is not None
                set_relays = announcer.on_relays

                def on_relays(relays: list[RelayInfo]) -> None:
                    set_relays(relays)
                    if all(r.relay_address != dead for r in relays):
                        dropped.set()
                        if len(relays) == 3:
                            replaced.set()

                announcer.on_relays = on_relays
                await victim.close()
                died = loop.time()
                await asyncio.wait_for(dropped.wait(), RECOVERY_DEADLINE)
                no_longer_offered = loop.time() - died
                await asyncio.wait_for(replaced.wait(), RECOVERY_DEADLINE)
                assert dead not in server.relay_addresses
                assert server._punches.relays == server.relays
                found = await other.find_peer(server.key_pair.public_key)
                assert found is not None and found.public_key == server.key_pair.public_key
                assert no_longer_offered < DROP_DEADLINE
            finally:
                await server.close()

    asyncio.run(run())
