"""Hyperswarm on a loopback testnet: the public API end to end (events, data, firewall, bans,
join_peer, leave, flush, suspend/resume, wrong arguments) and the 30-peer simultaneous join."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from hyperswarm_hugin import DHT, Connection, GroupKey, Hyperswarm, PeerInfo, SwarmDestroyed, Testnet
from tests.ports import free_port

pytestmark = pytest.mark.timeout(90)

GROUP = GroupKey.from_seed(bytes(range(32)))
TOPIC = GROUP.topic


async def until(condition: Callable[[], bool], deadline: float = 15.0) -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def swarm_on(net: Testnet, **options: object) -> Hyperswarm:
    return Hyperswarm(group=options.pop("group", GROUP), bootstrap=net.bootstrap, **options)  # type: ignore[arg-type]


def run(test: Callable[[Testnet], Awaitable[None]]) -> None:
    async def main() -> None:
        async with await Testnet.create(5) as net:
            await test(net)

    asyncio.run(main())


def test_two_swarms_connect_once_and_exchange_messages() -> None:
    async def test(net: Testnet) -> None:
        async with swarm_on(net) as a, swarm_on(net) as b:
            got: list[tuple[Connection, PeerInfo]] = []
            a.on("connection", lambda conn, info: got.append((conn, info)))
            updates: list[None] = []
            b.on("update", lambda: updates.append(None))
            stream = b.connections_stream()
            await a.join(TOPIC, server=True, client=False).flushed()
            b.join(TOPIC, server=False, client=True)
            conn_b, info_b = await asyncio.wait_for(anext(stream), 10)
            await until(lambda: len(got) == 1)
            conn_a, info_a = got[0]
            assert info_b.public_key == a.key_pair.public_key and info_b.client and info_b.topics == [TOPIC]
            assert info_a.public_key == b.key_pair.public_key and not info_a.client
            conn_b.write(b"hello")
            assert await asyncio.wait_for(conn_a.read(), 5) == b"hello"
            conn_a.write(b"back")
            assert await asyncio.wait_for(conn_b.read(), 5) == b"back"
            assert len(a.connections) == len(b.connections) == 1 and updates
            assert b.stats["connects"]["client"]["opened"] == 1
            assert a.stats["connects"]["server"]["opened"] == 1

    run(test)


def test_another_group_never_connects_and_is_refused_before_a_connection() -> None:
    async def test(net: Testnet) -> None:
        other = GroupKey.from_seed(os.urandom(32))
        async with swarm_on(net) as a, swarm_on(net, group=other) as b, swarm_on(net) as member:
            seen_by_b: list[bytes] = []
            b.on("connection", lambda conn, info: seen_by_b.append(info.public_key))
            await a.join(TOPIC).flushed()
            await b.join(TOPIC).flushed()
            member.join(TOPIC)
            await until(lambda: len(member.connections) == 1)  # the member finds a; b is refused
            await b.flush()  # b found a and the member and tried both: refused
            await until(lambda: b.stats["connects"]["client"]["closed"] >= 2 and b.connecting == 0)
            assert b.connections == set() and seen_by_b == []
            assert {c.remote_public_key for c in a.connections} == {member.key_pair.public_key}
            assert b.stats["connects"]["client"]["attempted"] >= 1  # b did try, and was refused

    run(test)


def test_firewall_refusal_bans_the_peer_and_emits_ban() -> None:
    async def test(net: Testnet) -> None:
        refused: list[bytes] = []

        def firewall(remote_public_key: bytes, payload: object) -> bool:
            refused.append(remote_public_key)
            return True

        async with swarm_on(net, firewall=firewall) as a, swarm_on(net) as b:
            bans: list[tuple[PeerInfo, str]] = []
            a.on("ban", lambda info, reason: bans.append((info, reason)))
            await a.join(TOPIC, server=True, client=False).flushed()
            b.join(TOPIC, server=False, client=True)
            await until(lambda: bool(bans))
            assert bans[0][0].public_key == b.key_pair.public_key and bans[0][1] == "firewall"
            assert a.peers[b.key_pair.public_key].banned and a.connections == set()
            assert a.stats["banned_peers"] == 1

    run(test)


def test_a_banned_peer_is_not_reconnected() -> None:
    async def test(net: Testnet) -> None:
        async with swarm_on(net) as a, swarm_on(net) as control, \
                swarm_on(net, backoffs=(0.2, 0.4, 0.8, 60.0), jitter=0.0) as b:
            await a.join(TOPIC, server=True, client=False).flushed()
            await control.join(TOPIC, server=True, client=False).flushed()
            b.join(TOPIC, server=False, client=True)
            await until(lambda: len(b.connections) == 2)
            b.peers[a.key_pair.public_key].ban(True)
            before = set(b.connections)
            for conn in before:
                await conn.close()
            # Both wait on the same short retry timer: the control's reconnect shows it fired.
            await until(lambda: any(c not in before for c in b.connections), 5)
            assert {c.remote_public_key for c in b.connections} == {control.key_pair.public_key}
            assert b.stats["connects"]["client"]["attempted"] == 3

    run(test)


def test_a_closed_connection_is_reconnected_fast() -> None:
    async def test(net: Testnet) -> None:
        async with swarm_on(net) as a, swarm_on(net, backoffs=(0.2, 0.4, 0.8, 60.0), jitter=0.0) as b:
            await a.join(TOPIC, server=True, client=False).flushed()
            b.join(TOPIC, server=False, client=True)
            await until(lambda: len(b.connections) == 1)
            [conn] = b.connections
            await conn.close()
            await until(lambda: len(b.connections) == 1 and conn not in b.connections, 5)
            assert b.stats["connects"]["client"]["attempted"] == 2

    run(test)


def test_join_peer_connects_without_a_topic_and_leave_peer_forgets() -> None:
    async def test(net: Testnet) -> None:
        async with swarm_on(net) as a, swarm_on(net) as b:
            await a.listen()
            b.join_peer(a.key_pair.public_key)
            await until(lambda: len(b.connections) == 1)
            assert b.peers[a.key_pair.public_key].explicit
            b.leave_peer(a.key_pair.public_key)
            assert not b.peers[a.key_pair.public_key].explicit
            assert len(b.connections) == 1  # leave_peer does not close what is open

    run(test)


def test_leave_unannounces_the_topic() -> None:
    async def test(net: Testnet) -> None:
        async with swarm_on(net) as a:
            await a.join(TOPIC, server=True, client=False).flushed()
            looker = net.nodes[1]
            assert a.key_pair.public_key in {p.public_key for p in await looker.lookup(TOPIC)}
            await a.leave(TOPIC)
            assert a.status(TOPIC) is None
            assert a.key_pair.public_key not in {p.public_key for p in await looker.lookup(TOPIC)}

    run(test)


def test_destroy_takes_the_topic_back_or_gives_up_within_the_grace() -> None:
    """With the DHT there, destroy() unannounces; with it gone, it waits UNANNOUNCE_GRACE at most
    (not every query's retries: SIGTERM must stop a peer in about a second)."""
    from hyperswarm_hugin.swarm import UNANNOUNCE_GRACE

    async def test(net: Testnet) -> None:
        a = swarm_on(net)
        await a.start()
        await a.join(TOPIC, server=True, client=False).flushed()
        looker = net.nodes[1]
        assert a.key_pair.public_key in {p.public_key for p in await looker.lookup(TOPIC)}
        await a.destroy()
        assert a.key_pair.public_key not in {p.public_key for p in await looker.lookup(TOPIC)}

        async with await Testnet.create(3) as doomed:
            b = Hyperswarm(group=GROUP, bootstrap=doomed.bootstrap)
            await b.start()
            await b.join(TOPIC, server=True, client=False).flushed()
            for node in doomed.nodes:
                await node.close()
            began = time.monotonic()
            await b.destroy()
            took = time.monotonic() - began
            assert took < UNANNOUNCE_GRACE + 0.5, f"destroy took {took:.1f} s with the DHT gone"

    run(test)


@asynccontextmanager
async def servers_on(net: Testnet, count: int) -> AsyncIterator[list[Hyperswarm]]:
    """``count`` server-only swarms announced on TOPIC."""
    servers = [swarm_on(net) for _ in range(count)]
    try:
        for s in servers:
            await s.start()
            await s.join(TOPIC, server=True, client=False).flushed()
        yield servers
    finally:
        for s in servers:
            await s.destroy()


def test_flush_returns_once_found_peers_were_tried() -> None:
    async def test(net: Testnet) -> None:
        async with servers_on(net, 3), swarm_on(net, max_parallel=1) as client:
            client.join(TOPIC, server=False, client=True)
            assert await asyncio.wait_for(client.flush(), 20)
            assert len(client.connections) == 3  # flush waited for all three, one at a time

    run(test)


def test_suspend_closes_connections_and_resume_reconnects() -> None:
    async def test(net: Testnet) -> None:
        async with swarm_on(net) as a, swarm_on(net) as b:
            await a.join(TOPIC, server=True, client=False).flushed()
            b.join(TOPIC, server=False, client=True)
            await until(lambda: len(b.connections) == 1)
            await b.suspend()
            assert b.connections == set()
            await until(lambda: not a.connections)
            await b.resume()
            await until(lambda: len(b.connections) == 1)

    run(test)


def test_max_peers_caps_connections() -> None:
    async def test(net: Testnet) -> None:
        async with servers_on(net, 3), swarm_on(net, max_peers=2) as client:
            client.join(TOPIC, server=False, client=True)
            assert await asyncio.wait_for(client.flush(), 20)  # done: the limit is full
            assert len(client.connections) == 2
            assert client.stats["connects"]["client"]["attempted"] == 2  # the third was never dialed

    run(test)


def test_wrong_arguments_raise_clear_errors() -> None:
    async def test(net: Testnet) -> None:
        with pytest.raises(ValueError, match="bootstrap"):
            Hyperswarm(group=GROUP)
        with pytest.raises(TypeError, match="GroupKey"):
            Hyperswarm(group=b"x" * 32, bootstrap=net.bootstrap)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="max_peers"):
            Hyperswarm(bootstrap=net.bootstrap, max_peers=-1)
        with pytest.raises(ValueError, match="bootstrap node"):
            Hyperswarm(bootstrap=["no-port"])
        swarm = swarm_on(net)
        with pytest.raises(RuntimeError, match="start the swarm"):
            swarm.join(TOPIC)
        async with swarm:
            with pytest.raises(ValueError, match="topic is required and must be 32 bytes"):
                swarm.join(b"short")
            with pytest.raises(ValueError, match="32 bytes"):
                swarm.join_peer(b"short")
            with pytest.raises(ValueError, match="public_key is not an Ed25519 public key"):
                swarm.join_peer(bytes(32))
            with pytest.raises(TypeError, match="listener must be a function"):
                swarm.on("update", None)  # type: ignore[arg-type]
            # on a started node too, a key that is no curve point fails at the call, not in the handshake
            with pytest.raises(ValueError, match="remote_public_key is not an Ed25519 public key"):
                await swarm.dht.connect(b"\x01" + bytes(31))
            with pytest.raises(ValueError, match="client, a server or both"):
                swarm.join(TOPIC, server=False, client=False)
            with pytest.raises(ValueError, match="unknown event"):
                swarm.on("connect", print)
        with pytest.raises(SwarmDestroyed):
            swarm.join(TOPIC)

    run(test)


def test_thirty_peers_joining_at_once_form_the_full_mesh_within_ten_seconds() -> None:
    """hyperswarm (Node) leaves about 100 of 435 pairs connected after 15 s here; the settle
    lookups close the mesh.  Each swarm runs three topic queries in that time (announce + two
    settle lookups), not a flood."""

    async def test(net: Testnet) -> None:
        swarms = [swarm_on(net) for _ in range(30)]
        try:
            for s in swarms:
                await s.start()
            started = time.monotonic()
            for s in swarms:
                s.join(TOPIC)

            def pairs() -> int:
                have = {(s.key_pair.public_key, c.remote_public_key) for s in swarms for c in s.connections}
                return sum(1 for a, b in have if a < b and (b, a) in have)

            await until(lambda: pairs() == 435, 10.0)
            elapsed = time.monotonic() - started
            queries = [s.stats["topic_queries"] for s in swarms]
            print(f"full mesh of 435 pairs in {elapsed:.1f} s; topic queries per swarm: max {max(queries)}")
            assert max(queries) <= 3
        finally:
            for s in swarms:
                await s.destroy()

    run(test)


def test_swarms_started_before_their_dht_nodes_connect_once_the_nodes_are_up() -> None:
    async def main() -> None:
        down, first, second = (("127.0.0.1", free_port(socket.SOCK_DGRAM)) for _ in range(3))
        # two DHT nodes, each bootstrapping from a node that never comes up and from the other
        nodes = [DHT(bootstrap=[down, second], port=first[1], firewalled=False),
                 DHT(bootstrap=[down, first], port=second[1], firewalled=False)]
        try:
            async with Hyperswarm(group=GROUP, bootstrap=[down, first, second]) as a, \
                    Hyperswarm(group=GROUP, bootstrap=[down, first, second]) as b:
                a.join(TOPIC)
                b.join(TOPIC)
                await until(lambda: a.stats["topic_queries_failed"] >= 1, 20)  # nobody answered
                began = time.monotonic()
                for node in nodes:
                    await node.start()
                await until(lambda: len(a.connections) == 1 and len(b.connections) == 1, 30)
                print(f"connected {time.monotonic() - began:.1f} s after the DHT nodes started")
        finally:
            for node in nodes:
                await node.close()

    asyncio.run(main())
