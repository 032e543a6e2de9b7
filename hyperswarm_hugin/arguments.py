"""Argument checks for the public API: a wrong argument fails at the call, naming itself.

Wrong values raise ValueError, objects of the wrong kind TypeError; both name the argument.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from hyperswarm_hugin.protocol.encoding import Address
from hyperswarm_hugin.protocol.hugin import GroupKey, KeyPair, is_public_key


def bytes32(value: object, name: str) -> bytes:
    """``value`` as bytes if it is 32 bytes long."""
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        got = f"{len(value)} bytes" if isinstance(value, bytes | bytearray) else type(value).__name__
        raise ValueError(f"{name} is required and must be 32 bytes, got {got}")
    return bytes(value)


def public_key(value: object, name: str) -> bytes:
    """``value`` if it is an Ed25519 public key a Noise handshake can use."""
    key = bytes32(value, name)
    if not is_public_key(key):
        raise ValueError(f"{name} is not an Ed25519 public key (not a valid curve point): {key.hex()}")
    return key


def key_pair(value: object, name: str = "key_pair") -> KeyPair:
    """``value`` if it is a KeyPair."""
    if not isinstance(value, KeyPair):
        raise TypeError(f"{name} must be a KeyPair, got {type(value).__name__}")
    return value


def group(value: object, name: str = "group") -> GroupKey | None:
    """None (no Hugin barrier) or a GroupKey."""
    if value is not None and not isinstance(value, GroupKey):
        raise TypeError(f"{name} must be a GroupKey (GroupKey.from_invite / from_seed) or None")
    return value


def callback(value: Any, name: str, signature: str, *, optional: bool = True) -> Any:
    """A function (or None when ``optional``); ``signature`` shows how it is called."""
    if (value is not None or not optional) and not callable(value):
        raise TypeError(f"{name} must be a function {signature}" + (" or None" if optional else "")
                        + f", got {type(value).__name__}")
    return value


def non_negative_int(value: object, name: str) -> int:
    """``value`` if it is an int (not a bool) of 0 or more."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def seconds(value: object, name: str) -> float:
    """A finite, non-negative number of seconds."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative number of seconds, got {value!r}")
    return float(value)


def host(value: object, name: str = "host") -> str:
    """A non-empty host name or address to bind."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a host name or IP address, got {value!r}")
    return value


def port(value: object, name: str = "port") -> int:
    """A port to bind: 0 (any) to 65535."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 65536:
        raise ValueError(f"{name} must be a port number from 0 (any) to 65535, got {value!r}")
    return value


def address(value: object, name: str, what: str = "an address") -> Address:
    """``(host, port)`` from a pair or a ``"host:port"`` string; the port 1 to 65535."""
    host_part: object = None
    port_part: object = None
    if isinstance(value, tuple | list) and len(value) == 2:
        host_part, port_part = value
    elif isinstance(value, str) and ":" in value:
        host_part, _, text = value.rpartition(":")
        port_part = int(text) if text.isdigit() else None
    if (not isinstance(host_part, str) or not host_part or not isinstance(port_part, int)
            or isinstance(port_part, bool) or not 0 < port_part < 65536):
        raise ValueError(f"{name} must be {what}, 'host:port' or (host, port) with a port from 1 to 65535; "
                         f"got {value!r}")
    return (host_part, port_part)


def addresses(value: Iterable[object] | None, name: str, what: str = "an address") -> list[Address] | None:
    """A list of addresses (see :func:`address`), or None."""
    if value is None:
        return None
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValueError(f"{name} must be a list of 'host:port' or (host, port), got {value!r}")
    return [address(a, f"{name}[{i}]", what) for i, a in enumerate(value)]
