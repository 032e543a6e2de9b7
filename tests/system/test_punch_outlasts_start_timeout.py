"""A server keeps an accepted stream while its punch runs, past the 10 s wait for the client's
first packet (hyperdht clears that wait, server.js ``prepunching``, once the punching round
started the punch).  A birthday search often needs 10-35 s: the NAT lab showed Python servers
dropping the stream and their puncher at 10 s, so every Node client whose probes had not met
ours by then failed with HOLEPUNCH_ABORTED (docs/holepunch.md, "Figures").

On loopback with holepunching forced (as tests/system/test_relay_upgrade.py), the wait is
shortened to 0.5 s and the server's probes are held back both ways (a NAT that has not opened
yet) until the server's puncher has sent two probes, 1-2 s into the punch; then they pass and
the client's next probe finds the server."""

from __future__ import annotations

import asyncio
import os

import pytest

from hyperswarm_hugin import DHT, GroupKey, KeyPair, Testnet, peer_connect
from hyperswarm_hugin.connection import Connection
from tests.relay_upgrade import ProbeGate

pytestmark = [pytest.mark.system, pytest.mark.timeout(90)]

GROUP = GroupKey.from_seed(os.urandom(32))
START_WAIT = 0.5


def test_a_punch_that_meets_after_the_first_packet_wait_still_connects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(peer_connect, "HANDSHAKE_INITIAL_TIMEOUT", START_WAIT)

    async def run() -> None:
        async with await Testnet.create(8) as net:
            nodes = [DHT(bootstrap=net.bootstrap, mode="ephemeral", quick_firewall=False) for _ in range(2)]
            try:
                for node in nodes:
                    await node.start()
                    await node.ready(20)
                server_node, client_node = nodes
                assert (await server_node.status()).firewalled and (await client_node.status()).firewalled
                outgoing = ProbeGate(server_node, sending=True)
                incoming = ProbeGate(server_node, sending=False)
                conns: asyncio.Queue[Connection] = asyncio.Queue()
                server = await server_node.listen(KeyPair.random(), group=GROUP, on_connection=conns.put_nowait,
                                                  share_local_address=False)
                connecting = asyncio.create_task(client_node.connect(
                    server.key_pair.public_key, group=GROUP, local_connection=False))
                try:
                    # The server probes once a second from 1 s into the punch: two held back means
                    # the stream has waited well past START_WAIT for the client's first packet.
                    loop = asyncio.get_running_loop()
                    until = loop.time() + 20
                    while outgoing.dropped < 2 and server.stats.never_started == 0 and loop.time() < until:
                        await asyncio.sleep(0.05)
                    assert server.stats.never_started == 0, "the stream was dropped while the punch ran"
                    assert outgoing.dropped >= 2
                    outgoing.is_open = incoming.is_open = True
                    conn = await asyncio.wait_for(connecting, 15)
                    accepted = await asyncio.wait_for(conns.get(), 10)
                finally:
                    connecting.cancel()
                assert conn.holepunched and not conn.relayed
                assert server.stats.holepunched == 1 and server.stats.never_started == 0
                conn.write(b"over the punched path")
                assert await asyncio.wait_for(accepted.read(), 10) == b"over the punched path"
                await conn.close()
                await server.close()
            finally:
                for node in nodes:
                    await node.close()

    asyncio.run(run())
