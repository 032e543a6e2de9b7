"""bench/natlab.py --split's reading of a run's packet captures (tests/natlab/split.py), on a
made-up run: no lab needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.natlab.split import ROUTER_IP, Packet, load, split_run

T0 = 1000.0  # the client's connect call (realtime seconds)
A, B = "10.0.1.2", "10.0.2.2"


def request(tid: int, command: int) -> bytes:
    """A dht-rpc request header: type, flags (target + value), tid, to, command."""
    return bytes([0x03, 0x18, tid & 0xFF, tid >> 8, 192, 88, 99, 1, 0x10, 0x27, command])


def response(tid: int) -> bytes:
    return bytes([0x13, 0x00, tid & 0xFF, tid >> 8, 10, 0, 2, 2, 0x10, 0x27])


def probe(t: float, out: bool, src: tuple[str, int], dst: tuple[str, int], ttl: int = 64) -> Packet:
    return Packet(T0 + t, out, src, dst, ttl, 1)


def made_up_run(hit_after: int = 50) -> dict[str, list[Packet]]:
    """consistent/random: the client in hB (RANDOM, birthday), the server in hA probing random ports."""
    a_pub, b_pub = ROUTER_IP["hA"], ROUTER_IP["hB"]
    hb: list[Packet] = [
        Packet(T0 + 0.010, True, (B, 5000), ("192.88.99.1", 40000), 64, 200, request(1, 0)),  # handshake
        Packet(T0 + 0.020, True, (B, 5000), ("192.88.99.1", 40000), 64, 120, request(2, 1)),  # round 0
        Packet(T0 + 0.025, False, ("192.88.99.1", 40000), (B, 5000), 63, 120, response(2)),
        Packet(T0 + 0.030, True, (B, 5000), ("192.88.99.1", 40000), 64, 120, request(3, 1)),  # punch round
        Packet(T0 + 0.035, False, ("192.88.99.1", 40000), (B, 5000), 63, 120, response(3)),
        probe(0.021, True, (B, 5000), (a_pub, 4000), ttl=5),  # fast open from the puncher's socket
    ]
    hb += [probe(0.040 + i * 0.0001, True, (B, 6000 + i), (a_pub, 4000), ttl=5) for i in range(255)]
    hb += [probe(0.160 + i * 0.02, True, (B, 5000 if i == 0 else 5999 + i), (a_pub, 4000), ttl=5 if i < 256 else 64)
           for i in range(60)]
    ha = [probe(0.036 + k * 0.02, True, (A, 4000), (b_pub, 2000 + (k if k != 7 else 3))) for k in range(100)]
    hit_at = 0.036 + hit_after * 0.02 + 0.0005
    hb.append(probe(hit_at, False, (a_pub, 4000), (B, 6010), ttl=62))
    return {"hA": sorted(ha, key=lambda p: p.t), "hB": sorted(hb, key=lambda p: p.t)}


def test_a_run_splits_into_the_rounds_the_sockets_and_the_search() -> None:
    split = split_run(made_up_run(), birthday="hB", client="hB", connect_start=T0, connected=T0 + 1.05)
    assert split.handshake == pytest.approx(0.010)
    assert split.rounds == [pytest.approx((0.020, 0.025)), pytest.approx((0.030, 0.035))]
    assert split.sockets == 256
    assert split.open_start == pytest.approx(0.040)  # the fast-open probe and the keep-alive are not the burst
    assert split.open_end == pytest.approx(0.040 + 254 * 0.0001)
    assert split.random_start == pytest.approx(0.036)
    assert split.search_start == pytest.approx(split.open_end)
    assert split.hit == pytest.approx(0.036 + 50 * 0.02 + 0.0005)
    assert split.probes_to_hit == 51  # probes 0..50 left before the hit arrived
    assert split.probes_in_search == 49  # probes 0 and 1 left before the last socket opened
    assert split.random_sent == 51 and split.random_distinct == 50  # one port probed twice
    assert split.random_interval_ms == pytest.approx(20.0)
    assert split.keepalive_interval_ms == pytest.approx(20.0)
    assert split.connected == pytest.approx(1.05)


def test_a_run_without_a_hit_has_no_search_length() -> None:
    packets = made_up_run()
    packets["hB"] = [p for p in packets["hB"] if p.out]
    split = split_run(packets, birthday="hB", client="hB", connect_start=T0, connected=None)
    assert split.hit is None and split.search is None and split.probes_to_hit is None
    assert split.random_sent == 100


def test_captures_load_sorted_by_time(tmp_path: Path) -> None:
    path = tmp_path / "hA.jsonl"
    lines = [{"t": 2_000_000_000, "dir": "in", "src": "192.88.99.3:5", "dst": f"{A}:6", "ttl": 62, "len": 1},
             {"t": 1_000_000_000, "dir": "out", "src": f"{A}:6", "dst": "192.88.99.1:7", "ttl": 64, "len": 3,
              "head": "030405"}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    found = load(path)
    assert [p.t for p in found] == [1.0, 2.0]
    assert found[0].out and found[0].head == bytes([3, 4, 5]) and not found[0].probe
    assert found[1].probe and found[1].src == ("192.88.99.3", 5)
    assert load(tmp_path / "missing.jsonl") == []


def test_a_hit_before_both_sides_probe_ends_the_deterministic_part() -> None:
    """The lab's TTL-5 probes reach the far router: a birthday socket's first probe can meet
    the consistent side's fast-open mapping before any random-port probe left."""
    packets = made_up_run()
    packets["hA"] = [p for p in packets["hA"] if p.t < T0 + 0.03]  # no random-port probe yet
    packets["hB"] = [p for p in packets["hB"] if p.out] + [
        probe(0.045, False, (ROUTER_IP["hA"], 4000), (B, 6050), ttl=3)]
    packets["hB"].sort(key=lambda p: p.t)
    split = split_run(packets, birthday="hB", client="hB", connect_start=T0, connected=T0 + 0.05)
    assert split.search_start is None and split.hit == pytest.approx(0.045)
    assert split.deterministic == pytest.approx(0.045)
    assert split.search == 0.0 and split.probes_searched == 0


def test_the_probe_period_is_the_mean_interval_up_to_the_hit() -> None:
    split = split_run(made_up_run(hit_after=50), birthday="hB", client="hB", connect_start=T0, connected=None)
    assert split.probe_period_ms == pytest.approx((50 * 20.0 + 0.5) / 50)
    short = split_run(made_up_run(hit_after=10), birthday="hB", client="hB", connect_start=T0, connected=None)
    assert short.probe_period_ms is None  # too few probes to say
