"""Python swarms and Node hyperswarm-hugin swarms on one Hugin topic, on a Node loopback testnet:
1 MiB echoed in both client/server arrangements, other-group and upstream peers never connected
(either way), and three Python plus three Node peers forming the full mesh of 15."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from hyperswarm_hugin import Connection, GroupKey, Hyperswarm, PeerInfo
from tests.interop.stdio_node import StdioNode
from tests.interop.test_dht_interop import parse, start_node_network

pytestmark = [pytest.mark.interop, pytest.mark.timeout(150)]

MIB = 1024 * 1024
GROUP_SEED = os.urandom(32)
GROUP = GroupKey.from_seed(GROUP_SEED)
TOPIC = GROUP.topic


async def read(js: StdioNode, event: str, deadline: float = 30.0) -> dict[str, Any]:
    while True:
        found = await asyncio.to_thread(js.read, deadline)
        if found["event"] == event:
            return found
        if found["event"] == "error":
            raise AssertionError(f"Node peer failed: {found}")


@asynccontextmanager
async def node_network() -> AsyncIterator[list[str]]:
    js, ready = await start_node_network("--nodes", "5", "--timeout", "140")
    try:
        yield ready["bootstrap"]
    finally:
        await asyncio.to_thread(js.close)


def node_swarm(bootstrap: list[str], *, impl: str = "hugin", group_seed: bytes = GROUP_SEED,
               role: str = "both", mode: str = "echo", nbytes: int = 0) -> StdioNode:
    return StdioNode("swarm_peer.js", "--bootstrap", ",".join(bootstrap), "--seed", os.urandom(32).hex(),
                     "--group", group_seed.hex(), "--topic", TOPIC.hex(), "--impl", impl, "--role", role,
                     "--mode", mode, "--bytes", str(nbytes), "--timeout", "120")


def python_swarm(bootstrap: list[str]) -> Hyperswarm:
    return Hyperswarm(group=GROUP, bootstrap=parse(bootstrap))


async def echo(conn: Connection) -> None:
    async for message in conn:
        conn.write(message)
        await conn.drain()


def test_node_client_echoes_through_a_python_server_swarm() -> None:
    async def run() -> None:
        async with node_network() as bootstrap, python_swarm(bootstrap) as swarm:
            infos: list[PeerInfo] = []
            tasks: list[asyncio.Task[None]] = []

            def on_connection(conn: Connection, info: PeerInfo) -> None:
                infos.append(info)
                tasks.append(asyncio.ensure_future(echo(conn)))

            swarm.on("connection", on_connection)
            await swarm.join(TOPIC, server=True, client=False).flushed()
            with node_swarm(bootstrap, role="client", mode="source", nbytes=MIB) as js:
                public_key = bytes.fromhex((await read(js, "ready"))["publicKey"])
                echoed = await read(js, "echoed", 60)
                assert echoed["ok"] and echoed["bytes"] == MIB
            assert [i.public_key for i in infos] == [public_key]
            assert not infos[0].client  # it dialed us
            for task in tasks:
                task.cancel()

    asyncio.run(run())


def test_python_client_swarm_echoes_through_a_node_server() -> None:
    async def run() -> None:
        async with node_network() as bootstrap:
            with node_swarm(bootstrap, role="server", mode="echo") as js:
                public_key = bytes.fromhex((await read(js, "ready"))["publicKey"])
                async with python_swarm(bootstrap) as swarm:
                    swarm.join(TOPIC, server=False, client=True)
                    conn, info = await asyncio.wait_for(anext(swarm.connections_stream()), 30)
                    assert conn.remote_public_key == public_key and info.client
                    payload = os.urandom(MIB)
                    for i in range(0, MIB, 16384):
                        conn.write(payload[i:i + 16384])
                    back = bytearray()
                    while len(back) < MIB:
                        back += await asyncio.wait_for(conn.read(), 30)
                    assert hashlib.sha256(back).digest() == hashlib.sha256(payload).digest()
                    connected = await read(js, "connection")
                    assert connected["remotePublicKey"] == swarm.key_pair.public_key.hex()

    asyncio.run(run())


def test_other_group_and_upstream_peers_never_connect_either_way() -> None:
    """Peers of another group and upstream hyperswarm peers share the topic with a Python swarm;
    a same-group Node peer, started last, is the control: it connects, the others never do."""

    async def run() -> None:
        async with node_network() as bootstrap, python_swarm(bootstrap) as swarm:
            seen: list[bytes] = []
            swarm.on("connection", lambda conn, info: seen.append(info.public_key))
            refused: set[bytes] = set()
            swarm.on("refused", lambda public_key, reason: refused.add(public_key))
            await swarm.join(TOPIC).flushed()
            with node_swarm(bootstrap, group_seed=os.urandom(32)) as other, \
                    node_swarm(bootstrap, impl="upstream") as upstream:
                outsiders = {bytes.fromhex((await read(js, "ready"))["publicKey"]) for js in (other, upstream)}
                with node_swarm(bootstrap) as member:
                    member_key = bytes.fromhex((await read(member, "ready"))["publicKey"])
                    await read(member, "connection")
                    # Both outsiders joined after us, so their lookups found us and they dialled:
                    # wait until our server refused each of them, then nothing may have connected.
                    deadline = time.monotonic() + 30
                    while not outsiders <= refused:
                        assert time.monotonic() < deadline, f"refused {len(outsiders & refused)} of 2 outsiders"
                        await asyncio.sleep(0.05)
                    # Our side reports the member once its first packet arrived: maybe just after.
                    while member_key not in seen:
                        assert time.monotonic() < deadline, "the member's connection was not reported"
                        await asyncio.sleep(0.05)
                    assert not outsiders & set(seen)
                    assert all(p.public_key not in outsiders for p in swarm.peers.values()
                               if p.public_key in {c.remote_public_key for c in swarm.connections})
                ours = swarm.key_pair.public_key.hex()
                for js in (other, upstream):
                    js.proc.stdin.close()  # type: ignore[union-attr]
                    lines = await asyncio.to_thread(js.drain_lines)
                    # (the upstream peer may accept the other-group peer: that is between them)
                    assert not [x for x in lines if x["event"] == "connection" and x["remotePublicKey"] == ours], lines
                    assert {"event": "timeout"} not in lines
            stats = swarm.stats
            assert stats["connects"]["server"]["opened"] + stats["connects"]["client"]["opened"] >= 1

    asyncio.run(run())


def count_link(links: Counter[bytes], line: dict[str, Any]) -> None:
    """Apply a Node peer's connection/close line to its open-connection count per remote key."""
    if line["event"] == "error":
        raise AssertionError(f"Node peer failed: {line}")
    if line["event"] in ("connection", "close"):
        links[bytes.fromhex(line["remotePublicKey"])] += 1 if line["event"] == "connection" else -1


def test_three_python_and_three_node_peers_form_the_full_mesh() -> None:
    async def run() -> None:
        async with node_network() as bootstrap:
            # Node peers start one after another: hyperswarm announces and looks up in one query,
            # so two Node peers joining at the same instant can each miss the other until the
            # 10-minute refresh (Node's behaviour, seen once in ~15 runs; ours re-looks up after
            # it settles).  Each Node peer starts once the previous one is announced.
            nodes: list[StdioNode] = []
            node_keys: list[bytes] = []
            # open connections per remote key: a peer may briefly hold two (the duplicate rule)
            node_links: list[Counter[bytes]] = []
            try:
                for _ in range(3):
                    nodes.append(node_swarm(bootstrap))
                    node_links.append(Counter())
                    while (line := await asyncio.to_thread(nodes[-1].read, 30))["event"] != "ready":
                        count_link(node_links[-1], line)
                    node_keys.append(bytes.fromhex(line["publicKey"]))
                swarms = [python_swarm(bootstrap) for _ in range(3)]
                for s in swarms:
                    await s.start()
                try:
                    for s in swarms:
                        s.join(TOPIC)
                    py_keys = [s.key_pair.public_key for s in swarms]
                    everyone = py_keys + node_keys
                    want = {frozenset((a, b)) for a in everyone for b in everyone if a != b}
                    assert len(want) == 15
                    deadline = time.monotonic() + 40
                    pairs: set[frozenset[bytes]] = set()
                    while time.monotonic() < deadline:
                        for i, js in enumerate(nodes):
                            for line in await asyncio.to_thread(js.ready_lines):
                                count_link(node_links[i], line)
                        have = {(s.key_pair.public_key, c.remote_public_key) for s in swarms for c in s.connections}
                        have |= {(node_keys[i], r) for i in range(3) for r, n in node_links[i].items() if n > 0}
                        pairs = {frozenset(p) for p in have if (p[1], p[0]) in have}
                        if pairs == want:
                            print(f"full mesh of 15 after {time.monotonic() - deadline + 40:.1f} s")
                            break
                        await asyncio.sleep(0.25)
                    names = {k: f"py{i}" for i, k in enumerate(py_keys)}
                    names |= {k: f"node{i}" for i, k in enumerate(node_keys)}
                    missing = [sorted(names[k] for k in p) for p in want - pairs]
                    assert pairs == want, f"{len(pairs)} of 15 pairs connected both ways; missing {missing}"
                finally:
                    for s in swarms:
                        await s.destroy()
            finally:
                for js in nodes:
                    await asyncio.to_thread(js.close)

    asyncio.run(run())
