"""The public API checks its arguments at the call, with errors that name the argument."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import pytest

from hyperswarm_hugin import DHT, GroupKey, Hyperswarm, KeyPair, Testnet
from hyperswarm_hugin import arguments as check

NOT_A_POINT = bytes(32)  # 32 bytes, but of small order: no Noise handshake can use it
KEY = KeyPair.random()
GOOD_TOPIC = bytes(range(32))


def fails(awaitable: Awaitable[Any]) -> None:
    asyncio.run(_await(awaitable))


async def _await(awaitable: Awaitable[Any]) -> None:
    await awaitable


def test_a_key_that_is_not_an_ed25519_point_fails_at_connect_naming_the_argument() -> None:
    dht = DHT(bootstrap=[])
    with pytest.raises(ValueError, match="remote_public_key is not an Ed25519 public key"):
        fails(dht.connect(NOT_A_POINT))
    with pytest.raises(ValueError, match="remote_public_key is required and must be 32 bytes"):
        fails(dht.connect(b"short"))


@pytest.mark.parametrize("call, message", [
    (lambda d: d.connect(KEY.public_key, key_pair="me"), "key_pair must be a KeyPair"),
    (lambda d: d.connect(KEY.public_key, group=b"x" * 32), "group must be a GroupKey"),
    (lambda d: d.connect(KEY.public_key, relay_addresses=["nowhere"]), r"relay_addresses\[0\]"),
    (lambda d: d.find_node(b"x"), "target is required and must be 32 bytes"),
    (lambda d: d.ping(("127.0.0.1", 0)), "address must be"),
    (lambda d: d.ping("no-port"), "address must be"),
    (lambda d: d.listen("me"), "key_pair must be a KeyPair"),
    (lambda d: d.listen(KEY, firewall=True), "firewall must be a function"),
    (lambda d: d.listen(KEY, on_connection=1), "on_connection must be a function"),
    (lambda d: d.announce(b"x", KEY), "topic is required and must be 32 bytes"),
    (lambda d: d.announce(GOOD_TOPIC, None), "key_pair must be a KeyPair"),
    (lambda d: d.announce(GOOD_TOPIC, KEY, [("h", 70000)]), r"relay_addresses\[0\]"),
    (lambda d: d.unannounce(GOOD_TOPIC, "me"), "key_pair must be a KeyPair"),
    (lambda d: d.lookup(None), "topic is required and must be 32 bytes"),
    (lambda d: d.announce_and_lookup(b"", KEY), "topic is required"),
    (lambda d: d.lookup_and_unannounce(GOOD_TOPIC, None), "key_pair must be a KeyPair"),
    (lambda d: d.find_peer(NOT_A_POINT), "public_key is not an Ed25519 public key"),
    (lambda d: d.immutable_put(b""), "value must be non-empty bytes"),
    (lambda d: d.immutable_put("text"), "value must be non-empty bytes"),
    (lambda d: d.immutable_get(b"x"), "target is required and must be 32 bytes"),
    (lambda d: d.mutable_put(KEY, b"v", -1), "seq must be a non-negative integer"),
    (lambda d: d.mutable_put(KEY, b""), "value must be non-empty bytes"),
    (lambda d: d.mutable_put(None, b"v"), "key_pair must be a KeyPair"),
    (lambda d: d.mutable_get(b"short"), "public_key is required and must be 32 bytes"),
    (lambda d: d.mutable_get(KEY.public_key, seq=-2), "seq must be a non-negative integer"),
    (lambda d: d.ready(timeout=-1), "timeout must be a non-negative number"),
])
def test_every_dht_call_checks_its_arguments(call: Any, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        fails(call(DHT(bootstrap=[])))


def test_dht_constructor_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match=r"bootstrap\[0\] must be a bootstrap node"):
        DHT(bootstrap=[("127.0.0.1", "x")])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="port must be a port number"):
        DHT(bootstrap=[], port=70000)
    with pytest.raises(ValueError, match="host must be"):
        DHT(bootstrap=[], host="")
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        DHT(bootstrap=[], seed=-1)
    with pytest.raises(TypeError, match="listener must be a function"):
        DHT(bootstrap=[]).on_event(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="size must be at least 1"):
        fails(Testnet.create(0))
    assert DHT(bootstrap=["10.0.0.1:49737"])._config.options.bootstrap == [("10.0.0.1", 49737)]


@pytest.mark.parametrize("kwargs, error, message", [
    ({"key_pair": "me"}, TypeError, "key_pair must be a KeyPair"),
    ({"seed": b"short"}, ValueError, "seed is required and must be 32 bytes"),
    ({"dht": "node"}, TypeError, "dht must be a DHT"),
    ({"port": -1}, ValueError, "port must be a port number"),
    ({"max_parallel": 1.5}, ValueError, "max_parallel must be a non-negative integer"),
    ({"firewall": "no"}, TypeError, "firewall must be a function"),
    ({"backoffs": [1, 2, 3]}, ValueError, "backoffs are four durations"),
    ({"backoffs": [1, 2, 3, -4]}, ValueError, r"backoffs\[3\] must be a non-negative number"),
    ({"jitter": float("nan")}, ValueError, "jitter must be a non-negative number"),
    ({"settle_delay": "1"}, ValueError, "settle_delay must be a non-negative number"),
    ({"rng_seed": -1}, ValueError, "rng_seed must be a non-negative integer"),
])
def test_hyperswarm_constructor_checks_its_arguments(kwargs: dict[str, Any], error: type[Exception],
                                                      message: str) -> None:
    with pytest.raises(error, match=message):
        Hyperswarm(group=GroupKey.from_seed(b"group"), bootstrap=[("127.0.0.1", 49737)], **kwargs)


def test_addresses_accept_pairs_and_host_port_text() -> None:
    assert check.address(("h", 1), "a") == ("h", 1)
    assert check.address(["h", 65535], "a") == ("h", 65535)
    assert check.address("::1:80", "a") == ("::1", 80)
    for bad in [("h", 0), ("h", True), ("", 1), "h:", ":1", "h", 5, None, ("h", 1, 2)]:
        with pytest.raises(ValueError, match="a must be"):
            check.address(bad, "a")
    with pytest.raises(ValueError, match="list"):
        check.addresses("h:1", "nodes")
