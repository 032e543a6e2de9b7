"""UdpEndpoint.send_batch: whatever the sizes, the peer receives the same datagrams in order,
with segmentation offload and without it; GRO trains are cut back into their datagrams."""

from __future__ import annotations

import asyncio
import socket

import pytest

from hyperswarm_hugin.actors import recvmmsg
from hyperswarm_hugin.actors.udp import LONG_DRAINS_BEFORE_MULTI, MULTI_AFTER, UdpEndpoint
from hyperswarm_hugin.protocol.encoding import Address

SIZES = [1172] * 70 + [300] + [1172] * 3 + [20, 20, 20] + [700, 1172, 1172, 64]


def datagrams() -> list[bytes]:
    return [bytes([i % 251]) * size for i, size in enumerate(SIZES)]


def received_by_plain_socket(gso: bool) -> list[bytes]:
    async def main() -> list[bytes]:
        loop = asyncio.get_running_loop()
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        receiver.bind(("127.0.0.1", 0))
        receiver.setblocking(False)
        sender = UdpEndpoint(loop, lambda batch: None)
        sender.bind("127.0.0.1", 0)
        sender.gso = sender.gso and gso
        try:
            sender.send_batch(datagrams(), receiver.getsockname()[:2])
            got: list[bytes] = []
            for _ in range(200):
                try:
                    got.append(receiver.recv(65535))
                except BlockingIOError:
                    if len(got) >= len(SIZES):
                        break
                    await asyncio.sleep(0.01)
            return got
        finally:
            sender.close()
            receiver.close()

    return asyncio.run(main())


def test_a_batch_arrives_as_the_same_datagrams_in_order() -> None:
    assert received_by_plain_socket(gso=True) == datagrams()


def test_without_segmentation_the_same_datagrams_arrive() -> None:
    assert received_by_plain_socket(gso=False) == datagrams()


def test_an_endpoint_receives_a_batch_datagram_by_datagram() -> None:
    async def main() -> list[tuple[bytes, Address]]:
        loop = asyncio.get_running_loop()
        got: list[tuple[bytes, Address]] = []
        done = loop.create_future()

        def on_batch(batch: list[tuple[bytes, Address]]) -> None:
            got.extend(batch)
            if len(got) >= len(SIZES) and not done.done():
                done.set_result(None)

        receiver = UdpEndpoint(loop, on_batch)
        address = receiver.bind("127.0.0.1", 0)
        sender = UdpEndpoint(loop, lambda batch: None)
        sender.bind("127.0.0.1", 0)
        try:
            sender.send_batch(datagrams(), address)
            await asyncio.wait_for(done, 10)
            return got
        finally:
            sender.close()
            receiver.close()

    got = asyncio.run(main())
    assert [data for data, _ in got] == datagrams()
    assert {source for _, source in got} == {got[0][1]}


def batches_of(payloads: list[bytes], gro: bool) -> list[list[bytes]]:
    """The batches an endpoint hands on for datagrams that were all waiting when it read."""
    async def main() -> list[list[bytes]]:
        loop = asyncio.get_running_loop()
        batches: list[list[bytes]] = []
        done = loop.create_future()

        def on_batch(batch: list[tuple[bytes, Address]]) -> None:
            batches.append([data for data, _ in batch])
            if sum(map(len, batches)) >= len(payloads) and not done.done():
                done.set_result(None)

        receiver = UdpEndpoint(loop, on_batch)
        address = receiver.bind("127.0.0.1", 0)
        receiver.gro = receiver.gro and gro
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for payload in payloads:  # all queued before the loop runs the reader
                sender.sendto(payload, address)
            await asyncio.wait_for(done, 10)
            return batches
        finally:
            sender.close()
            receiver.close()

    return asyncio.run(main())


def test_a_drain_asks_whether_more_waits_and_still_reads_everything() -> None:
    """After the first datagram the endpoint asks the kernel (FIONREAD) whether another waits
    instead of reading until EAGAIN: waiting datagrams still come in one batch, and a
    zero-length one (which reads as nothing waiting) arrives on the next turn, in order."""
    for gro in (True, False):
        five = [bytes([i]) * (100 + i) for i in range(5)]
        assert batches_of(five, gro) == [five]
        assert batches_of([b"first", b"", b"third", b"fourth"], gro) == [[b"first"], [b"", b"third", b"fourth"]]
        assert batches_of([b"alone"], gro) == [[b"alone"]]


@pytest.mark.skipif(not recvmmsg.available(), reason="recvmmsg through ctypes is Linux (little-endian) only")
def test_recvmmsg_reads_every_waiting_datagram_with_its_source_and_cuts_gro_runs() -> None:
    """Datagrams from two senders, of every size from empty to a GRO run of segmented ones, all
    waiting: read in slots-sized calls, in order, each with its own source address."""
    async def main() -> None:
        loop = asyncio.get_running_loop()
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        receiver.setsockopt(17, 104, 1)  # UDP_GRO
        receiver.bind(("127.0.0.1", 0))
        receiver.setblocking(False)
        address = receiver.getsockname()[:2]
        plain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        plain.bind(("127.0.0.1", 0))
        segmenting = UdpEndpoint(loop, lambda batch: None)
        segmenting_address = segmenting.bind("127.0.0.1", 0)
        try:
            expected: list[tuple[bytes, Address]] = []
            for i in range(40):
                data = bytes([i]) * (i * 37 % 1500)
                plain.sendto(data, address)
                expected.append((data, plain.getsockname()[:2]))
            train = datagrams()
            segmenting.send_batch(train, address)
            expected += [(data, segmenting_address) for data in train]
            for i in range(30):
                plain.sendto(bytes([i]) * 20, address)
                expected.append((bytes([i]) * 20, plain.getsockname()[:2]))
            multi = recvmmsg.MultiReceiver(slots=8)
            got: list[tuple[bytes, Address]] = []
            assert multi.read(receiver.fileno(), got, 1000) == 0
            assert got == expected
            more: list[tuple[bytes, Address]] = []
            assert multi.read(receiver.fileno(), more, 1000) == 0
            assert more == []  # nothing waits: one call, EAGAIN
        finally:
            segmenting.close()
            plain.close()
            receiver.close()

    asyncio.run(main())


def test_an_endpoint_drains_a_train_of_small_datagrams_in_one_batch() -> None:
    """The many-small-datagrams drain (a Node peer's per-packet ACKs): every one arrives, in
    order, in one batch (with recvmmsg where there is one)."""
    acks = [i.to_bytes(4, "little") * 5 for i in range(300)]
    batches = batches_of(acks, gro=True)
    assert [data for batch in batches for data in batch] == acks
    assert len(batches) <= 2  # the endpoint's batch is 256


@pytest.mark.skipif(not recvmmsg.available(), reason="recvmmsg through ctypes is Linux (little-endian) only")
def test_recvmmsg_is_taken_on_for_a_sustained_train_not_for_a_burst() -> None:
    """A socket reads its first long drains one datagram at a time (a DHT walk's burst of
    replies does not load ctypes); once trains keep coming, the rest of each drain is read with
    recvmmsg, and every datagram still arrives in order."""
    async def main() -> None:
        loop = asyncio.get_running_loop()
        got: list[bytes] = []
        wanted = 0
        arrived = asyncio.Event()

        def on_batch(batch: list[tuple[bytes, Address]]) -> None:
            got.extend(data for data, _ in batch)
            if len(got) >= wanted:
                arrived.set()

        receiver = UdpEndpoint(loop, on_batch)
        address = receiver.bind("127.0.0.1", 0)
        assert receiver.gro  # the drain with recvmmsg is the GRO socket's
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sent: list[bytes] = []
        try:
            for train in range(LONG_DRAINS_BEFORE_MULTI + 2):
                if train == 1:
                    assert receiver.multi is None  # one burst: no recvmmsg yet
                # sizes differ, so a GRO socket does not join them into one run
                payloads = [bytes([train % 256, i]) * (8 + i) for i in range(MULTI_AFTER + 6)]
                for payload in payloads:  # all queued before the loop runs the reader
                    sender.sendto(payload, address)
                sent.extend(payloads)
                wanted = len(sent)
                arrived.clear()
                await asyncio.wait_for(arrived.wait(), 10)
            assert receiver.multi is not None
            assert got == sent
        finally:
            sender.close()
            receiver.close()

    asyncio.run(main())
