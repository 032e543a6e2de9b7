"""HandshakeAdmission: limits keyed on what a sender cannot forge, bounded under floods."""

from __future__ import annotations

import time

from hyperswarm_hugin.protocol.admission import AdmissionLimits, HandshakeAdmission

RELAY = ("127.0.0.5", 49737)
FORGER = ("127.0.0.66", 1234)
MEMBER = ("127.0.0.9", 5000)


def test_a_forged_relayed_address_costs_only_the_forgers_budget() -> None:
    adm = HandshakeAdmission()
    for _ in range(50):  # a fake relay names the member's address and fails the group check
        adm.admit(FORGER, MEMBER, 0.0)
        adm.failed(FORGER, MEMBER, 0.0)
    assert adm.admit(FORGER, MEMBER, 1.0) == "throttled"
    assert adm.admit(RELAY, MEMBER, 1.0) is None  # the member, relayed by a real relay
    assert adm.admit(MEMBER, None, 1.0) is None  # or coming directly


def test_a_direct_client_is_limited_by_host_whatever_its_port() -> None:
    adm = HandshakeAdmission(AdmissionLimits(rate=1.0, burst=5))
    answers = [adm.admit(("127.0.0.7", 1000 + i), None, 0.0) for i in range(8)]
    assert answers == [None] * 5 + ["rate-limited"] * 3
    assert adm.admit(("127.0.0.8", 1000), None, 0.0) is None


def test_failures_block_the_port_then_the_host() -> None:
    adm = HandshakeAdmission()
    for i in range(3):
        adm.failed(("127.0.0.7", 1000), None, float(i))
    assert adm.admit(("127.0.0.7", 1000), None, 3.0) == "throttled"
    assert adm.admit(("127.0.0.7", 1001), None, 3.0) is None
    for port in range(20):
        adm.failed(("127.0.0.7", 2000 + port), None, 4.0)
    assert adm.admit(("127.0.0.7", 3000), None, 5.0) == "throttled"
    assert adm.admit(("127.0.0.7", 3000), None, 65.0) is None


def test_a_flood_from_many_addresses_stays_bounded_in_memory_and_cpu() -> None:
    limits = AdmissionLimits(max_keys=1000)
    adm = HandshakeAdmission(limits)
    n = 100_000
    admitted = 0
    start = time.perf_counter()
    for i in range(n):
        source = (f"127.{i % 200}.{(i // 200) % 250}.1", 1000 + i % 50_000)
        relayed_for = (f"127.0.{i % 251}.{i % 253}", i % 65535 + 1) if i % 2 else None
        if adm.admit(source, relayed_for, i / 10_000) is None:  # 100k handshakes in 10 s
            admitted += 1
            adm.failed(source, relayed_for, i / 10_000)
    took = time.perf_counter() - start
    sizes = adm.table_sizes()
    print(f"{n} handshakes from ~{n // 2} addresses: {admitted} admitted, tables {sizes}, {took:.2f} s")
    assert all(size <= limits.max_keys for size in sizes.values())
    # The global bucket and the reserve: at most their bursts plus their rates over the 10 s.
    assert admitted <= (limits.global_burst + limits.global_rate * 10
                        + limits.reserve_burst + limits.reserve_rate * 10 + 2)
    assert took / n < 50e-6  # well under the cost of the Noise handshake it guards


def test_past_the_global_budget_each_host_gets_a_trickle_of_the_reserve() -> None:
    adm = HandshakeAdmission(AdmissionLimits(global_rate=1.0, global_burst=10, reserve_rate=100.0,
                                             reserve_burst=100, reserve_host_rate=1.0, reserve_host_burst=2))
    flooders = [(f"127.0.1.{i}", 1000) for i in range(10)]
    answers = [adm.admit(flooders[i % 10], None, 0.0) for i in range(100)]
    assert answers.count(None) == 10 + 10 * 2  # the global burst, then each host's share of the reserve
    assert answers[-1] == "busy"
    assert adm.admit(MEMBER, None, 0.0) is None  # a host that did not flood: its share is intact
    assert adm.admit(RELAY, MEMBER, 0.0) is None  # and a relay that did not either
