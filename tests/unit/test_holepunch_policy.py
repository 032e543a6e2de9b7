"""The pure side of holepunching: hyperdht's NAT classifier (test/nat.js vectors), matchAddress
(test/holepuncher.js cases), the strategy per pair of NAT classes, bogon addresses, the
random-punch budget and the payload sealing with host tokens."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from hyperswarm_hugin.protocol.hyperdht.constants import Firewall, coerce_firewall
from hyperswarm_hugin.protocol.hyperdht.holepunch import (
    PunchBudget,
    SecurePayload,
    Strategy,
    first_public_address,
    is_bogon,
    is_private,
    match_address,
    pick_server_relay,
    probe_this_tick,
    punch_strategy,
    random_port,
    unstable,
)
from hyperswarm_hugin.protocol.hyperdht.nat import NatAnalyzer
from hyperswarm_hugin.protocol.hyperdht.payloads import HolepunchPayload, RelayInfo

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "holepunch.json").read_text())


def test_an_unfirewalled_node_is_open() -> None:
    nat = NatAnalyzer(firewalled=False)
    assert nat.sampled == 0
    assert nat.firewall is Firewall.OPEN


@pytest.mark.parametrize("case", VECTORS["nat"], ids=lambda c: c["name"])
def test_classifier_matches_hyperdht(case: dict[str, Any]) -> None:
    nat = NatAnalyzer(firewalled=True)
    for step in case["samples"]:
        nat.add(tuple(step["to"]), tuple(step["from"]))
        assert nat.sampled == step["sampled"]
        assert nat.firewall == step["firewall"]
        got = None if nat.addresses is None else [[s.host, s.port, s.hits] for s in nat.addresses]
        assert got == step["addresses"]


def test_sampling_skips_the_five_newest_nodes_and_asks_each_once() -> None:
    nat = NatAnalyzer(firewalled=True)
    nodes = [("10.0.0.1", p) for p in range(10)]
    first = nat.sample_targets(nodes)
    assert first == nodes[5:9]  # 4 samples wanted, the 5 newest skipped
    assert nat.sample_targets(nodes, pending=len(first)) == []
    few = [("10.0.0.2", p) for p in range(3)]
    assert NatAnalyzer(firewalled=True).sample_targets(few) == few  # under 8 nodes: none skipped


def test_a_frozen_analysis_keeps_its_verdict_until_unfrozen() -> None:
    nat = NatAnalyzer(firewalled=True)
    for port in (1, 2, 3):
        nat.add(("1.2.3.4", 9000), ("5.6.7.8", port))
    assert nat.firewall is Firewall.CONSISTENT and nat.settled
    nat.freeze()
    for port in (4, 5, 6, 7, 8):
        nat.add(("1.2.3.4", 9000 + port), ("5.6.7.8", port))
    assert nat.firewall is Firewall.CONSISTENT
    nat.unfreeze()
    assert nat.firewall is Firewall.CONSISTENT  # 3 of 8 still the top, seen >= 3 times


@pytest.mark.parametrize("case", VECTORS["match_address"], ids=lambda c: c["name"])
def test_match_address_matches_hyperdht(case: dict[str, Any]) -> None:
    remote = [(host, 0) for host in case["remote"]]
    found = match_address(case["local"], remote)
    assert (found[0] if found else None) == case["expected"]


C, R, OP, U = Firewall.CONSISTENT, Firewall.RANDOM, Firewall.OPEN, Firewall.UNKNOWN


@pytest.mark.parametrize(("local", "remote", "verified", "expected"), [
    (C, C, False, Strategy.CONSISTENT),
    (OP, C, False, Strategy.CONSISTENT),   # open punches like consistent
    (C, OP, False, Strategy.CONSISTENT),
    (C, R, True, Strategy.RANDOM_PORTS),
    (C, R, False, None),                   # random ports need a verified remote host
    (R, C, True, Strategy.BIRTHDAY),
    (R, OP, True, Strategy.BIRTHDAY),
    (R, C, False, None),
    (R, R, True, None),
    (U, C, True, None),
    (C, U, True, None),
])
def test_strategy_per_pair_of_nat_classes(local: Firewall, remote: Firewall, verified: bool,
                                          expected: Strategy | None) -> None:
    assert punch_strategy(local, remote, verified) is expected


def test_unstable_pairs_are_unknown_or_doubly_random() -> None:
    assert unstable(U, C) and unstable(R, R) and unstable(R, 4)
    assert not unstable(C, R) and not unstable(R, C) and not unstable(C, U)
    assert coerce_firewall(OP) is C and coerce_firewall(99) is U


def test_consistent_probing_tries_unverified_addresses_on_ticks_four_and_eight() -> None:
    assert [t for t in range(1, 11) if probe_this_tick(False, t)] == [4, 8]
    assert all(probe_this_tick(True, t) for t in range(1, 11))


def test_random_ports_stay_in_hyperdhts_range() -> None:
    rng = random.Random(7)
    ports = [random_port(rng) for _ in range(10_000)]
    assert min(ports) >= 1000 and max(ports) < 65536


def test_bogon_ranges_are_those_of_the_bogon_package() -> None:
    for host in ("10.1.2.3", "100.64.0.1", "127.0.0.1", "169.254.1.1", "172.16.0.1", "192.168.1.1"):
        assert is_private(host) and is_bogon(host)
    for host in ("0.1.2.3", "192.0.2.1", "198.18.0.1", "198.51.100.1", "203.0.113.9", "224.0.0.1", "255.255.255.255"):
        assert not is_private(host) and is_bogon(host)
    for host in ("192.88.99.2", "8.8.8.8", "100.128.0.1", "172.32.0.1"):
        assert not is_bogon(host)
    assert first_public_address([("10.0.0.1", 1), ("127.0.0.1", 2)], ("9.9.9.9", 3)) == ("9.9.9.9", 3)
    assert first_public_address([("10.0.0.1", 1), ("192.88.99.5", 2)], ("9.9.9.9", 3)) == ("192.88.99.5", 2)


def test_the_server_relay_that_carried_the_handshake_is_preferred() -> None:
    relays = [RelayInfo(("1.1.1.1", 1), ("2.2.2.2", 2)), RelayInfo(("3.3.3.3", 3), ("2.2.2.2", 2))]
    assert pick_server_relay(relays, ("3.3.3.3", 3)) is relays[1]
    assert pick_server_relay(relays, ("4.4.4.4", 4)) is relays[0]


def test_random_punch_budget_one_at_a_time_and_twenty_seconds_after_the_last_ended() -> None:
    budget = PunchBudget()
    assert budget.allows(0.0)
    budget.begin()
    assert not budget.allows(0.0)
    budget.end(5.0)
    assert not budget.allows(24.9)
    assert budget.allows(25.0)
    budget.begin()
    budget.end(30.0)  # a punch that failed delays the next as well (holepuncher.js)
    assert not budget.allows(49.9)
    budget.begin()  # a client's punch round holds the budget only while it is in flight
    assert not budget.allows(60.0)
    budget.release()
    assert budget.allows(60.0)


def test_sealed_payloads_open_with_the_same_secret_only_and_tokens_are_per_host() -> None:
    secret = bytes(range(32))
    ours = SecurePayload(secret, b"\x01" * 32)
    theirs = SecurePayload(secret, b"\x02" * 32)
    payload = HolepunchPayload(firewall=Firewall.CONSISTENT, round=1, punching=True,
                               addresses=[("192.88.99.2", 4000)], token=ours.token("192.88.99.2"))
    assert theirs.open(ours.seal(payload)) == payload
    assert SecurePayload(b"\x09" * 32, b"\x01" * 32).open(ours.seal(payload)) is None
    assert theirs.open(b"\x00" * 10) is None
    assert ours.token("192.88.99.2") != theirs.token("192.88.99.2")
    assert ours.token("192.88.99.2") != ours.token("192.88.99.3")
    with pytest.raises(ValueError):
        SecurePayload(b"short", b"\x01" * 32)
