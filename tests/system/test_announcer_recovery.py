"""A listening server replaces a relay that died within seconds (issue 17 item 5): it pings its
relays every 3 s and announces again when fewer than three answer, as hyperdht-hugin does."""

from __future__ import annotations

import asyncio

import pytest

from hyperswarm_hugin import DHT, KeyPair, Testnet
from hyperswarm_hugin.protocol.hyperdht.payloads import RelayInfo

pytestmark = [pytest.mark.system, pytest.mark.timeout(90)]

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
                changed = asyncio.Event()
                announcer = server._announcer
                assert announcer is not None
                set_relays = announcer.on_relays

                def on_relays(relays: list[RelayInfo]) -> None:
                    set_relays(relays)
                    if all(r.relay_address != dead for r in relays) and len(relays) == 3:
                        changed.set()

                announcer.on_relays = on_relays
                await victim.close()
                died = loop.time()
                await asyncio.wait_for(changed.wait(), RECOVERY_DEADLINE)
                recovery = loop.time() - died
                assert dead not in server.relay_addresses
                assert server._punches.relays == server.relays
                found = await other.find_peer(server.key_pair.public_key)
                assert found is not None and found.public_key == server.key_pair.public_key
                assert recovery < RECOVERY_DEADLINE
            finally:
                await server.close()

    asyncio.run(run())
