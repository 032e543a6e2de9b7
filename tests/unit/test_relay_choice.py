"""Which relay a connection uses: hyperdht's ``selectRelay`` and hyperswarm's relay function (a
key is used when forced, after a failed punch, or when our NAT is random)."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from hyperswarm_hugin.errors import RELAY_FALLBACK_CODES
from hyperswarm_hugin.relay_choice import check_relay_through, select_relay
from hyperswarm_hugin.swarm_host import swarm_relay_function

A, B = b"\x0a" * 32, b"\x0b" * 32


def test_select_relay_takes_a_key_a_list_or_a_function() -> None:
    assert select_relay(None) is None
    assert select_relay(A) == A
    assert {select_relay([A, B], random.Random(seed)) for seed in range(20)} == {A, B}
    assert select_relay([]) is None
    assert select_relay(lambda: B) == B
    assert select_relay(lambda: None) is None
    with pytest.raises(ValueError, match="32 bytes"):
        select_relay(lambda: b"short")


def test_bad_relay_arguments_are_refused_at_the_call() -> None:
    for bad in (b"short", [A, b"x"], [A, "not bytes"]):
        with pytest.raises(ValueError, match="relay"):
            check_relay_through(bad)  # type: ignore[arg-type]


def test_the_swarm_relays_when_forced_or_randomized_only() -> None:
    relay = swarm_relay_function(A)
    assert relay is not None
    calm, randomized = SimpleNamespace(randomized=False), SimpleNamespace(randomized=True)
    assert relay(False, calm) is None
    assert relay(True, calm) == A
    assert relay(False, randomized) == A
    assert swarm_relay_function(None) is None
    custom = swarm_relay_function(lambda force, swarm: B if force else None)
    assert custom is not None and custom(True, calm) == B and custom(False, randomized) is None


def test_the_codes_that_force_a_relay_are_hyperswarms() -> None:
    assert {"HOLEPUNCH_ABORTED", "HOLEPUNCH_DOUBLE_RANDOMIZED_NATS", "CANNOT_HOLEPUNCH",
            "REMOTE_NOT_HOLEPUNCHABLE"} == RELAY_FALLBACK_CODES
