"""The path MTU search of a UDX stream (udx.md §8, as libudx): from the first acknowledgement, one
new DATA packet at a time is padded (doff) to the next size; each one acknowledged raises the
payload by 32 bytes up to the path's limit; a padded packet that is lost goes again unpadded, and
after three lost probes at one size the search stops there.  The bytes always arrive intact."""

from __future__ import annotations

import random

from hyperswarm_hugin.protocol.udx.mtu import MTU_BASE, MTU_OVERHEAD
from hyperswarm_hugin.protocol.udx.packet import HEADER_SIZE, unpack_header
from hyperswarm_hugin.protocol.udx.stream import UdxStream
from tests.udxsim import Pair


def run(limit: int | None, *, drop_padded_over: int | None = None, size: int = 3_000_000) -> tuple[Pair, list[bytes]]:
    """A → B transfer of ``size`` random bytes with A's search bounded by ``limit``; the path
    drops every padded packet whose IP size would exceed ``drop_padded_over``.  Returns the pair
    and every datagram A sent."""
    pair = Pair(random.Random(7), delay=0.002)
    pair.a.set_mtu_limit(limit)
    sent: list[bytes] = []
    path_send = pair.path.send

    def send(now: float, to: int, data: bytes) -> None:
        if to == 1:
            sent.append(data)
            doff = data[3]
            if drop_padded_over is not None and doff and len(data) + 28 > drop_padded_over:
                pair.path.sent += 1
                return
        path_send(now, to, data)

    pair.path.send = send  # type: ignore[method-assign]
    payload = random.Random(1).randbytes(size)
    for start in range(0, size, 65536):  # a write per round trip or so: many rounds to probe in
        pair.a.write(payload[start:start + 65536])
        for _ in range(100_000):
            if not pair.a.queued_bytes and not pair.a.buffered:
                break
            pair.step()
    pair.a.end()
    pair.b.end()
    pair.run(until=120)
    assert bytes(pair.received_b) == payload
    assert pair.a.closed and pair.a.error is None
    return pair, sent


def ip_sizes(datagrams: list[bytes]) -> list[int]:
    return [len(d) + 28 for d in datagrams]


def test_without_a_limit_from_the_adapter_there_is_no_search() -> None:
    pair = Pair(random.Random(1))
    pair.a.write(b"x" * 100_000)
    pair.run(until=5)
    assert pair.a.path_mtu.probes_sent == 0 and pair.a.path_mtu.mtu == MTU_BASE
    assert bytes(pair.received_b) == b"x" * 100_000


def test_the_search_climbs_in_steps_of_32_to_the_path_limit() -> None:
    pair, sent = run(1500)
    assert pair.a.path_mtu.mtu == 1500 and pair.a.max_payload == 1500 - MTU_OVERHEAD
    padded = [d for d in sent if d[3]]
    # 1232, 1264, ... 1488, then 1500 (the first probe, at 1200 itself, needs no padding)
    targets = [*range(MTU_BASE + 32, 1500, 32), 1500]
    assert ip_sizes(padded) == targets
    for datagram in padded:
        kind, doff = unpack_header(datagram)[2:4]
        assert datagram[HEADER_SIZE:HEADER_SIZE + doff] == bytes(doff) and kind == 1
    assert max(ip_sizes(sent)) == 1500


def test_a_limit_at_or_below_the_base_means_no_search() -> None:
    pair, sent = run(1200)
    assert pair.a.path_mtu.probes_sent == 0 and max(ip_sizes(sent)) <= MTU_BASE
    assert not any(d[3] for d in sent)


def test_lost_probes_go_again_unpadded_and_three_losses_end_the_search() -> None:
    pair, sent = run(1500, drop_padded_over=1300)
    assert pair.a.path_mtu.mtu == 1296  # 1232, 1264, 1296 got through; 1328 was lost three times
    assert pair.a.max_payload == 1296 - MTU_OVERHEAD
    assert ip_sizes([d for d in sent if d[3]]).count(1328) == 3
    assert max(ip_sizes([d for d in sent if not d[3]])) == 1296
    assert pair.a.stats_retransmits >= 3


def test_a_new_path_starts_the_search_over() -> None:
    stream = UdxStream(1)
    stream.connect(2)
    stream.set_mtu_limit(1500)
    stream.path_mtu.mtu = 1400  # as if a search had got there
    stream.set_mtu_limit(1400)
    assert stream.path_mtu.mtu == MTU_BASE and stream.max_payload == MTU_BASE - MTU_OVERHEAD
