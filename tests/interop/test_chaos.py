"""Chaos in the spirit of hyperswarm's own test: 10 swarms (8 Python, 2 Node hyperswarm-hugin)
on 15 topics, random joins and leaves, 30 forced disconnects.  At the end every pair that shares
a topic is connected exactly once, and once everything is closed no task, socket, stream or
actor of ours is left over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections import Counter

import pytest

from hyperswarm_hugin import GroupKey, Hyperswarm, Testnet
from tests.interop.stdio_node import StdioNode

pytestmark = [pytest.mark.interop, pytest.mark.timeout(300)]

log = logging.getLogger(__name__)

GROUP_SEED = b"chaos room".ljust(32, b".")
GROUP = GroupKey.from_seed(GROUP_SEED)
TOPICS = [bytes([i]) * 32 for i in range(15)]
PYTHON_SWARMS = 8
NODE_SWARMS = 2  # each on one topic for the whole run (swarm_peer.js joins one topic)
DISCONNECTS = 30
SEED = 20261126


class NodePeer:
    """A Node swarm on one topic; its connection lines are followed by a reader task."""

    def __init__(self, bootstrap: list[tuple[str, int]], topic: bytes) -> None:
        self.topic = topic
        self.js = StdioNode("swarm_peer.js", "--bootstrap", ",".join(f"{h}:{p}" for h, p in bootstrap),
                            "--seed", os.urandom(32).hex(), "--group", GROUP_SEED.hex(), "--topic", topic.hex(),
                            "--timeout", "280")
        self.public_key = b""
        self.open: Counter[bytes] = Counter()  # remote key -> connections open now
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        ready = await asyncio.to_thread(self.js.read, 60.0)
        assert ready["event"] == "ready", ready
        self.public_key = bytes.fromhex(ready["publicKey"])
        self.task = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        while self.js.proc.poll() is None:
            for line in await asyncio.to_thread(self.js.ready_lines):
                if line["event"] == "connection":
                    self.open[bytes.fromhex(line["remotePublicKey"])] += 1
                elif line["event"] == "close":
                    self.open[bytes.fromhex(line["remotePublicKey"])] -= 1
            await asyncio.sleep(0.05)  # polling the reader thread's queue, not synchronisation

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await asyncio.to_thread(self.js.close)


def python_topics(swarm: Hyperswarm) -> set[bytes]:
    return set(swarm._topics)


def connected_once(a: Hyperswarm, b_key: bytes) -> bool:
    return sum(1 for c in a.connections if c.remote_public_key == b_key) == 1


async def chaos() -> None:
    rng = random.Random(SEED)
    loop = asyncio.get_running_loop()
    tasks_before = asyncio.all_tasks()
    async with await Testnet.create(5) as net:
        swarms = [Hyperswarm(group=GROUP, bootstrap=net.bootstrap, backoffs=(0.2, 0.5, 1.0, 60.0), jitter=0.1)
                  for _ in range(PYTHON_SWARMS)]
        nodes = [NodePeer(net.bootstrap, TOPICS[i]) for i in range(NODE_SWARMS)]
        runtimes = []
        try:
            for swarm in swarms:
                await swarm.start()
                runtimes.append(swarm._dht.runtime)
            for swarm in swarms:
                for topic in rng.sample(TOPICS, rng.randint(1, 4)):
                    swarm.join(topic)
            await asyncio.gather(*(node.start() for node in nodes))
            # The chaos: joins, leaves and forced disconnects, interleaved.
            disconnects = 0
            steps = 0
            while disconnects < DISCONNECTS:
                steps += 1
                swarm = rng.choice(swarms)
                action = rng.random()
                if action < 0.5:
                    live = sorted(swarm.connections, key=lambda c: c.remote_public_key)
                    if live:
                        rng.choice(live).destroy(ConnectionAbortedError("chaos"))
                        disconnects += 1
                elif action < 0.75:
                    swarm.join(rng.choice(TOPICS))
                elif len(python_topics(swarm)) > 1:
                    await swarm.leave(rng.choice(sorted(python_topics(swarm))))
                await asyncio.sleep(rng.uniform(0.05, 0.3))  # chaos pacing: events at random moments
            # Each Node peer's topic has Python swarms on it at the end (the mix is what is tested).
            for i, node in enumerate(nodes):
                swarms[i].join(node.topic)
            # Settle: every topic looked up again (peers given up on after repeated failures come back).
            for swarm in swarms:
                await asyncio.gather(*(swarm._topics[t].refresh() for t in list(swarm._topics)))

            def missing() -> list[str]:
                problems = []
                members: list[tuple[bytes, set[bytes]]] = [(s.key_pair.public_key, python_topics(s)) for s in swarms]
                members += [(n.public_key, {n.topic}) for n in nodes]
                by_key = {s.key_pair.public_key: s for s in swarms}
                nodes_by_key = {n.public_key: n for n in nodes}
                for i, (a, a_topics) in enumerate(members):
                    for b, b_topics in members[i + 1:]:
                        shared = a_topics & b_topics
                        for x, y in ((a, b), (b, a)):
                            if x in by_key:
                                count = sum(1 for c in by_key[x].connections if c.remote_public_key == y)
                            else:
                                count = nodes_by_key[x].open[y]
                            if count > 1 or (shared and count != 1):
                                problems.append(f"{x.hex()[:8]}->{y.hex()[:8]}: {count} (shared {len(shared)})")
                return problems

            end = time.monotonic() + 90
            while problems := missing():
                assert time.monotonic() < end, f"after {steps} steps: {problems}"
                await asyncio.sleep(0.2)
            pairs = sum(len(s.connections) for s in swarms)
            assert all(sum(n.open.values()) >= 1 for n in nodes)
            log.info("chaos: %d steps, %d forced disconnects; %d Python-side connections at the end", steps,
                     disconnects, pairs)
            print(f"\nchaos: {steps} steps, {disconnects} forced disconnects, every pair sharing a topic "
                  f"connected exactly once ({pairs} connections seen from the Python side)")
        finally:
            for node in nodes:
                await node.close()
            for swarm in swarms:
                await swarm.destroy()
        for runtime in runtimes:
            assert runtime.closed and runtime.system is None  # actors gone
            assert not runtime.streams.streams  # streams gone
            assert not runtime._endpoints or all(e.sock is None for e in runtime._endpoints.values())
        for swarm in swarms:
            assert not swarm._tasks and not swarm._conns
    await asyncio.sleep(0)
    left = {t for t in asyncio.all_tasks(loop) if t is not asyncio.current_task()} - tasks_before
    assert not left, f"tasks left over: {left}"


def test_chaos() -> None:
    asyncio.run(chaos())
