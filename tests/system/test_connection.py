"""Python-to-Python connections on loopback: boundaries, backpressure, end, close, tampering."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from hyperswarm_hugin import Testnet
from hyperswarm_hugin.actors.runtime import NodeRuntime, RuntimeConfig
from hyperswarm_hugin.connection import HIGH_WATER, Connection, ConnectionClosed
from hyperswarm_hugin.protocol.dht.node import NodeOptions
from hyperswarm_hugin.protocol.hugin import KeyPair
from hyperswarm_hugin.protocol.noise import NoiseHandshake
from hyperswarm_hugin.protocol.secret_stream import SecretStreamError
from tests.interop.lossy_relay import LossyRelay

pytestmark = [pytest.mark.system, pytest.mark.timeout(60)]


@asynccontextmanager
async def connected(relay: LossyRelay | None = None) -> AsyncIterator[tuple[Connection, Connection]]:
    runtimes = [NodeRuntime(RuntimeConfig(options=NodeOptions(bootstrap=[], ephemeral=True))) for _ in range(2)]
    for runtime in runtimes:
        await runtime.start()
    try:
        a, b = runtimes[0].create_stream(), runtimes[1].create_stream()
        if relay is None:
            a.connect(b.id, runtimes[1].server_address)
            b.connect(a.id, runtimes[0].server_address)
        else:
            relay.set_peer("a", runtimes[0].server_address)
            relay.set_peer("b", runtimes[1].server_address)
            a.connect(b.id, relay.address("a"))
            b.connect(a.id, relay.address("b"))
        ka, kb = KeyPair.random(), KeyPair.random()
        ini = NoiseHandshake(ka, initiator=True, remote_public_key=kb.public_key)
        res = NoiseHandshake(kb, initiator=False)
        res.recv(ini.send(b""))
        ini.recv(res.send(b""))
        assert ini.result and res.result
        yield Connection(a, ini.result), Connection(b, res.result)
    finally:
        for runtime in runtimes:
            await runtime.close()


def test_messages_keys_and_clean_half_close() -> None:
    async def run() -> None:
        async with connected() as (a, b):
            assert a.remote_public_key == b.public_key and b.remote_public_key == a.public_key
            sizes = [1, 1152, 1153, 100_000, 7]
            for size in sizes:
                a.write(os.urandom(size))
            assert [len(await b.read()) for _ in sizes] == sizes
            a.end()
            assert await asyncio.wait_for(b.read(), 10) == b""
            b.write(b"still open the other way")  # half close
            assert await asyncio.wait_for(a.read(), 10) == b"still open the other way"
            b.end()
            assert await asyncio.wait_for(a.read(), 10) == b""
            await asyncio.wait_for(asyncio.gather(a.wait_closed(), b.wait_closed()), 10)
            assert a.error is None and b.error is None
            with pytest.raises(ConnectionClosed):
                a.write(b"late")

    asyncio.run(run())


def test_backpressure_holds_the_writer_until_the_reader_reads() -> None:
    async def run() -> None:
        async with connected() as (a, b):
            chunk = bytes(64 * 1024)
            written = 0
            drained = asyncio.Event()

            async def writer() -> None:
                nonlocal written
                while written < 64 * 1024 * 1024:
                    a.write(chunk)
                    written += len(chunk)
                    await a.drain()
                drained.set()

            task = asyncio.create_task(writer())
            sender = a._transport.stream
            # Nobody reads b: its window closes and the writer stalls well short of 64 MiB.
            for _ in range(2000):
                if sender.peer_rwnd == 0 and a.write_blocked:
                    break
                await asyncio.sleep(0.001)
            assert sender.peer_rwnd == 0
            stalled_at = written
            for _ in range(50):
                await asyncio.sleep(0.001)
            assert written == stalled_at < 16 * 1024 * 1024
            assert not drained.is_set()
            received = 0
            while received < 64 * 1024 * 1024:
                received += len(await asyncio.wait_for(b.read(), 10))
            await asyncio.wait_for(task, 10)
            assert written == received and stalled_at >= HIGH_WATER

    asyncio.run(run())


def test_a_corrupted_frame_closes_the_connection_and_nothing_corrupt_is_read() -> None:
    async def run() -> None:
        relay = await LossyRelay(seed=3, loss=0, duplicate=0, reorder=0, corrupt_nth=5).start()
        try:
            async with connected(relay) as (a, b):
                messages = [os.urandom(3000) for _ in range(20)]
                for message in messages:
                    a.write(message)
                got: list[bytes] = []
                with pytest.raises(ConnectionClosed) as failure:
                    while True:
                        message = await asyncio.wait_for(b.read(), 10)
                        assert message
                        got.append(message)
                assert isinstance(failure.value.__cause__, SecretStreamError)
                assert got == messages[:len(got)] and len(got) < len(messages)
                assert b.closed
                # The writer learns of it too: b destroyed its stream, a sees the reset.
                await asyncio.wait_for(a.wait_closed(), 10)
                assert isinstance(a.error, ConnectionResetError)
        finally:
            relay.close()

    asyncio.run(run())


def test_a_cancelled_read_leaves_no_waiter_and_the_message_for_the_next_read() -> None:
    async def run() -> None:
        async with connected() as (a, b):
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(b.read(), 0.05)  # times out: cancelled while waiting
            assert b._read_waiters == []
            pending = asyncio.ensure_future(b.read())
            await asyncio.sleep(0)  # one loop turn: the read task takes its first step and waits
            assert len(b._read_waiters) == 1
            pending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await pending
            assert b._read_waiters == []
            a.write(b"after two cancelled reads")
            assert await asyncio.wait_for(b.read(), 10) == b"after two cancelled reads"

    asyncio.run(run())


def test_reachability_is_the_status_firewall_and_address() -> None:
    """What a connect asks of its node (reachability_now) is what the full status says, for a
    node the testnet found open (with a sampled address) and one that has sampled nothing."""
    async def run() -> None:
        async with await Testnet.create(3) as net:
            lonely = NodeRuntime(RuntimeConfig(options=NodeOptions(bootstrap=[], ephemeral=True)))
            await lonely.start()
            try:
                answers = []
                for runtime in (net.nodes[1].runtime, lonely):
                    reach, status = runtime.reachability_now(), runtime.status_now()
                    answers.append((reach.firewalled, reach.public_address))
                    assert answers[-1] == (status.firewalled, status.public_address)
                assert answers[0] != answers[1] and answers[0][1] is not None
            finally:
                await lonely.close()

    asyncio.run(run())
