"""Write tokens (keyed BLAKE2b of the host, rotating secrets) and the NAT sampler's vote."""

from __future__ import annotations

import hashlib

from hyperswarm_hugin.protocol.dht.nat_sampler import NatSampler
from hyperswarm_hugin.protocol.dht.tokens import MAX_ISSUED, TokenSecrets

S0, S1 = b"\x01" * 32, b"\x02" * 32


def test_token_is_keyed_blake2b_of_the_host_string() -> None:
    tokens = TokenSecrets(S0, S1)
    expected = hashlib.blake2b(b"127.0.0.1", digest_size=32, key=S1).digest()
    assert tokens.issue("127.0.0.1") == expected
    assert tokens.verify(expected, "127.0.0.1")
    assert not tokens.verify(expected, "127.0.0.2")
    assert not tokens.verify(bytes(32), "127.0.0.1")


def test_tokens_survive_one_rotation_not_two() -> None:
    tokens = TokenSecrets(S0, S1)
    token = tokens.issue("10.0.0.1")
    tokens.rotate()
    assert tokens.verify(token, "10.0.0.1")
    newer = tokens.issue("10.0.0.1")
    assert newer == hashlib.blake2b(b"10.0.0.1", digest_size=32,
                                    key=hashlib.blake2b(S0, digest_size=32).digest()).digest()
    tokens.rotate()
    assert not tokens.verify(token, "10.0.0.1")
    assert tokens.verify(newer, "10.0.0.1")


def test_sampler_agrees_on_a_consistent_address() -> None:
    nat = NatSampler()
    assert nat.address is None
    nat.add(("1.2.3.4", 5000))
    assert nat.address == ("1.2.3.4", 5000)  # one sample out of one
    for _ in range(5):
        nat.add(("1.2.3.4", 5000))
    nat.add(("1.2.3.4", 6000))
    assert nat.address == ("1.2.3.4", 5000)  # 6 of 7 meets the threshold 7 - 1


def test_sampler_reports_port_zero_when_only_the_host_is_stable() -> None:
    nat = NatSampler()
    for port in range(5000, 5008):
        nat.add(("1.2.3.4", port))
    assert nat.address == ("1.2.3.4", 0)


def test_sampler_knows_nothing_when_hosts_disagree() -> None:
    nat = NatSampler()
    for i in range(8):
        nat.add((f"1.2.3.{i}", 5000))
    assert nat.address is None


def test_sampler_window_forgets_old_samples() -> None:
    nat = NatSampler()
    for _ in range(16):
        nat.add(("1.1.1.1", 1))
    for _ in range(16):
        nat.add(("2.2.2.2", 2))
    assert nat.address == ("2.2.2.2", 2)
    assert len(nat) == 16


def test_issued_tokens_are_kept_per_host_until_a_rotation_and_bounded() -> None:
    tokens = TokenSecrets(S0, S1)
    first = tokens.issue("10.0.0.1")
    assert tokens.issue("10.0.0.1") == first
    for i in range(MAX_ISSUED + 10):  # more hosts than kept: the store starts over, tokens stay right
        tokens.issue(f"10.1.{i // 256}.{i % 256}")
    assert len(tokens._issued) <= MAX_ISSUED
    assert tokens.issue("10.0.0.1") == first
    tokens.rotate()
    assert tokens.issue("10.0.0.1") != first
    rotated = hashlib.blake2b(S0, digest_size=32).digest()  # the new current secret
    assert tokens.issue("10.0.0.1") == hashlib.blake2b(b"10.0.0.1", digest_size=32, key=rotated).digest()
    assert tokens.verify(first, "10.0.0.1")
