"""A relayed connection moves to the direct path when punching succeeds later (hyperdht 6.34's
upgrade, docs/holepunch.md "From relayed to direct"), on loopback with holepunching forced as in
tests/interop/test_holepunch_interop.py (ephemeral nodes without the quick firewall check stay
firewalled; no local addresses, no local connection).

The relay must win the race deterministically: the server's holepunch probes are dropped (a
gate on its runtime's ``send_probe``, as a NAT that has not opened yet) until the relayed stream
has carried bytes both ways.  The client keeps punching behind the relay; when the gate opens,
its puncher hears the server, the stream moves, and the relay is let go.  Bytes flow the whole
time, both ways, and their sha256 is checked across the switch."""

from __future__ import annotations

import asyncio
import os

import pytest

from hyperswarm_hugin import DHT, GroupKey, KeyPair, Testnet
from hyperswarm_hugin.blind_relay import BlindRelayServer
from hyperswarm_hugin.connection import Connection
from tests.relay_upgrade import WINDOW, ProbeGate, Transfer

pytestmark = [pytest.mark.system, pytest.mark.timeout(120)]

GROUP = GroupKey.from_seed(os.urandom(32))
AFTER_SWITCH = 2 * 1024 * 1024  # bytes echoed over the direct path before the test ends


async def echo(conn: Connection) -> None:
    async for message in conn:
        conn.write(message)
        await conn.drain()
    conn.end()


def test_a_relayed_connection_moves_to_the_punched_path_and_keeps_its_bytes() -> None:
    async def run() -> None:
        async with await Testnet.create(8) as net:
            nodes = [DHT(bootstrap=net.bootstrap, mode="ephemeral", quick_firewall=False) for _ in range(2)]
            relay_node = DHT(bootstrap=net.bootstrap)
            try:
                for node in (*nodes, relay_node):
                    await node.start()
                    await node.ready(20)
                server_node, client_node = nodes
                assert (await server_node.status()).firewalled and (await client_node.status()).firewalled
                relay = BlindRelayServer(relay_node.runtime)
                relay_server = await relay_node.listen(KeyPair.random(), on_connection=relay.accept)
                gate = ProbeGate(server_node, sending=True)
                conns: asyncio.Queue[Connection] = asyncio.Queue()
                server = await server_node.listen(KeyPair.random(), group=GROUP, on_connection=conns.put_nowait,
                                                  share_local_address=False)
                conn = await asyncio.wait_for(client_node.connect(
                    server.key_pair.public_key, group=GROUP, local_connection=False,
                    relay_through=relay_server.key_pair.public_key), 30)
                assert conn.relayed and not conn.holepunched
                accepted = await asyncio.wait_for(conns.get(), 10)
                echoing = asyncio.create_task(echo(accepted))
                transfer = Transfer(conn)
                tasks = [asyncio.create_task(transfer.write()), asyncio.create_task(transfer.read())]
                try:
                    await asyncio.wait_for(transfer.echoed_at_least(WINDOW), 30)
                    assert accepted.relayed and conn.relayed  # the bytes so far went through the relay
                    through_relay = relay_node.runtime.streams.relayed_packets
                    assert through_relay > WINDOW // 1500
                    gate.is_open = True  # the server's NAT opens: its probes reach the client now
                    await asyncio.wait_for(conn.wait_direct(), 30)
                    await asyncio.wait_for(accepted.wait_direct(), 30)
                    assert not conn.relayed and conn.holepunched
                    assert not accepted.relayed and accepted.holepunched
                    switched_at = transfer.echoed
                    relayed_at_switch = relay_node.runtime.streams.relayed_packets
                    await asyncio.wait_for(transfer.echoed_at_least(switched_at + AFTER_SWITCH), 30)
                    # Relayed, these bytes and their echo would be > 2 * AFTER_SWITCH / 1500 packets
                    # through the relay; only what was queued there at the switch may still pass.
                    assert relay_node.runtime.streams.relayed_packets - relayed_at_switch < AFTER_SWITCH // 3000
                    transfer.stopping = True
                    await asyncio.wait_for(asyncio.gather(*tasks, echoing), 30)
                finally:
                    for task in (*tasks, echoing):
                        task.cancel()
                assert transfer.intact
                assert gate.dropped > 0  # the relay came first because the probes were held back
                assert server.stats.relayed == 1 and server.stats.upgraded == 1
                await conn.close()
                await server.close()
                await relay_server.close()
                await relay.close()
            finally:
                for node in (*nodes, relay_node):
                    await node.close()

    asyncio.run(run())
