"""hyperdht records between Python and Node hyperdht nodes on one loopback network:
announce / lookup / unannounce, mutable and immutable values, written on one side, read on
the other."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from hyperswarm_hugin import DHT, DHTError, KeyPair
from tests.interop.test_dht_interop import node_request, parse, start_node_network

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]


async def mixed_network(body: Any) -> None:
    js, ready = await start_node_network("--nodes", "5", "--timeout", "100")
    py_nodes: list[DHT] = []
    try:
        for _ in range(3):
            node = DHT(bootstrap=parse(ready["bootstrap"]))
            py_nodes.append(node)
            await node.start()
            await node.ready(20)
        await body(js, py_nodes)
    finally:
        for node in py_nodes:
            await node.close()
        await asyncio.to_thread(js.close)


def test_python_announces_node_looks_up_and_unannounce_removes_it() -> None:
    async def body(js: Any, py: list[DHT]) -> None:
        topic, seed = os.urandom(32), os.urandom(32)
        key_pair = KeyPair.from_seed(seed)
        assert await py[0].announce(topic, key_pair, [("127.0.0.1", 40404)]) >= 3
        found = await node_request(js, "lookup", node=2, topic=topic.hex())
        assert found == [{"publicKey": key_pair.public_key.hex(), "relayAddresses": [["127.0.0.1", 40404]]}]
        assert await py[0].unannounce(topic, key_pair) >= 3
        assert await node_request(js, "lookup", node=2, topic=topic.hex()) == []

    asyncio.run(mixed_network(body))


def test_node_announces_python_looks_up_and_node_unannounces() -> None:
    async def body(js: Any, py: list[DHT]) -> None:
        topic, seed = os.urandom(32), os.urandom(32)
        await node_request(js, "announce", node=1, topic=topic.hex(), seed=seed.hex(),
                           relayAddresses=[["127.0.0.1", 50505]])
        peers = await py[1].lookup(topic)
        assert [(p.public_key, p.relay_addresses) for p in peers] == [
            (KeyPair.from_seed(seed).public_key, [("127.0.0.1", 50505)])]
        await node_request(js, "unannounce", node=1, topic=topic.hex(), seed=seed.hex())
        assert await py[1].lookup(topic) == []

    asyncio.run(mixed_network(body))


def test_immutable_values_cross_both_ways() -> None:
    async def body(js: Any, py: list[DHT]) -> None:
        value = os.urandom(200)
        digest = await py[0].immutable_put(value)
        assert await node_request(js, "immutableGet", node=3, hash=digest.hex()) == {"value": value.hex()}
        other = os.urandom(300)
        put = await node_request(js, "immutablePut", node=3, value=other.hex())
        assert await py[2].immutable_get(bytes.fromhex(put["hash"])) == other

    asyncio.run(mixed_network(body))


def test_mutable_values_cross_both_ways_and_seq_rules_hold() -> None:
    async def body(js: Any, py: list[DHT]) -> None:
        seed = os.urandom(32)
        key_pair = KeyPair.from_seed(seed)
        await py[0].mutable_put(key_pair, b"first", seq=1)
        got = await node_request(js, "mutableGet", node=2, publicKey=key_pair.public_key.hex())
        assert got == {"seq": 1, "value": b"first".hex()}
        await node_request(js, "mutablePut", node=2, seed=seed.hex(), value=b"second".hex(), seq=2)
        record = await py[1].mutable_get(key_pair.public_key)
        assert record is not None and (record.seq, record.value) == (2, b"second")
        # Every node that holds seq 2 refuses seq 1 (SEQ_TOO_LOW, 17); node 2 kept our seq 1 (its own
        # put skips itself) and refuses different bytes under the same seq (SEQ_REUSED, 16).
        with pytest.raises(DHTError, match=r"ERROR_1[67]"):
            await py[0].mutable_put(key_pair, b"stale", seq=1)

    asyncio.run(mixed_network(body))
