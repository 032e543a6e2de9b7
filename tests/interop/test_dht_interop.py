"""Python DHT nodes inside a network of real Node hyperdht nodes, and the reverse.

The Node side is tests/interop/node/dht_network.js (hyperdht 6.34 on dht-rpc 6.27).
Node's stdio is read in a worker thread so the Python nodes keep answering meanwhile.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable
from typing import Any

import pytest

from hyperswarm_hugin import DHT, Testnet
from hyperswarm_hugin.protocol.dht.routing_table import sort_by_distance
from hyperswarm_hugin.protocol.encoding import Address
from tests.interop.stdio_node import StdioNode

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]


def parse(addresses: Iterable[str]) -> list[Address]:
    out = []
    for a in addresses:
        host, port = a.rsplit(":", 1)
        out.append((host, int(port)))
    return out


async def node_request(js: StdioNode, cmd: str, **fields: Any) -> Any:
    return await asyncio.to_thread(js.request, cmd, **fields)


async def node_find(js: StdioNode, node: int, target: bytes) -> list[bytes]:
    result = await node_request(js, "findNode", node=node, target=target.hex())
    return [bytes.fromhex(r["id"]) for r in result["closest"]]


async def start_node_network(*args: str) -> tuple[StdioNode, dict[str, Any]]:
    js = StdioNode("dht_network.js", *args)
    try:
        ready = await asyncio.to_thread(js.read, 60.0)
    except BaseException:
        js.close()
        raise
    assert ready["event"] == "ready", ready
    return js, ready


def ids_of(infos: list[dict[str, Any]]) -> list[bytes]:
    return [bytes.fromhex(n["id"]) for n in infos if n["id"]]


async def python_joins_node_network(impl: str) -> None:
    js, ready = await start_node_network("--nodes", "5", "--impl", impl, "--timeout", "100")
    rng = random.Random(1)
    try:
        node_ids = ids_of(ready["nodes"])
        assert len(node_ids) == 5, "every Node testnet node should be persistent"
        targets = [rng.randbytes(32) for _ in range(10)]
        before = [await node_find(js, 1, t) for t in targets]
        async with DHT(bootstrap=parse(ready["bootstrap"])) as py:
            await py.ready(20)
            status = await py.status()
            assert status.id == py.expected_id and not status.ephemeral
            assert len(status.table) == 5  # every Node node is in our table
            for target, old in zip(targets, before, strict=True):
                new = await node_find(js, 1, target)
                everyone = [i for i in node_ids if i != node_ids[1]] + [py.expected_id]
                assert new == sort_by_distance(target, everyone)[:20]
                assert set(old) == set(new) - {py.expected_id}
            # The Python node is in the Node nodes' routing tables.
            for i in range(5):
                table = await node_request(js, "table", node=i)
                assert py.expected_id.hex() in {n["id"] for n in table}
    finally:
        await asyncio.to_thread(js.close)


async def node_joins_python_network() -> None:
    async with await Testnet.create(5) as net:
        boot = [f"{h}:{p}" for h, p in net.bootstrap]
        js, ready = await start_node_network("--nodes", "1", "--bootstrap", ",".join(boot),
                                             "--timeout", "100")
        try:
            [info] = ready["nodes"]
            assert info["id"] and not info["ephemeral"], "the Node node became persistent among Python nodes"
            node_id = bytes.fromhex(info["id"])
            py_ids = [n.expected_id for n in net.nodes]
            rng = random.Random(2)
            for _ in range(10):
                target = rng.randbytes(32)
                assert await node_find(js, 0, target) == sort_by_distance(target, py_ids)[:20]
            table = {bytes.fromhex(n["id"]) for n in await node_request(js, "table", node=0)}
            assert table == set(py_ids)
            # The Python nodes learned the Node node too; their lookups find it.
            found = await net.nodes[2].find_node(node_id)
            assert found.closest[0].id == node_id
        finally:
            await asyncio.to_thread(js.close)


async def mixed_network_lookups() -> None:
    js, ready = await start_node_network("--nodes", "5", "--timeout", "100")
    py_nodes: list[DHT] = []
    try:
        bootstrap = parse(ready["bootstrap"])
        for _ in range(5):
            node = DHT(bootstrap=bootstrap)
            py_nodes.append(node)
            await node.start()
            await node.ready(20)
        all_ids = ids_of(ready["nodes"]) + [n.expected_id for n in py_nodes]
        assert len(set(all_ids)) == 10
        rng = random.Random(3)
        for i in range(20):
            target = rng.randbytes(32)
            if i % 2:
                origin = rng.randrange(5)
                got = await node_find(js, origin, target)
                own = ids_of(ready["nodes"])[origin]
            else:
                py = rng.choice(py_nodes)
                got = [r.id for r in (await py.find_node(target)).closest if r.id]
                own = py.expected_id
            expected = sort_by_distance(target, [x for x in all_ids if x != own])[:20]
            assert got == expected, f"lookup {i} from {'Node' if i % 2 else 'Python'}"
    finally:
        for node in py_nodes:
            await node.close()
        await asyncio.to_thread(js.close)


@pytest.mark.parametrize("impl", ["hyperdht", "dht-rpc"])
def test_python_node_joins_a_node_testnet(impl: str) -> None:
    asyncio.run(python_joins_node_network(impl))


def test_node_node_joins_a_python_testnet() -> None:
    asyncio.run(node_joins_python_network())


def test_mixed_network_lookups_match_brute_force() -> None:
    asyncio.run(mixed_network_lookups())

