"""compact-encoding and dht-rpc vectors captured from the Node packages (tests/vectors/*.json)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hyperswarm_hugin.protocol.dht.ids import node_id
from hyperswarm_hugin.protocol.dht.messages import Request, Response, decode_message
from hyperswarm_hugin.protocol.encoding import (
    Reader,
    encode_ipv4_address,
    write_array,
    write_buffer,
    write_fixed,
    write_ipv4_address,
    write_ipv6_address,
    write_string,
    write_uint,
    write_uint16,
    write_uint32,
)
from hyperswarm_hugin.protocol.errors import DecodeError

VECTORS = Path(__file__).parents[1] / "vectors"
CE = json.loads((VECTORS / "compact_encoding.json").read_text())
RPC = json.loads((VECTORS / "dht_rpc.json").read_text())


def encoded(write: Callable[[bytearray, Any], None], value: Any) -> str:
    out = bytearray()
    write(out, value)
    return out.hex()


def addr(pair: list[Any]) -> tuple[str, int]:
    return (pair[0], pair[1])


CODECS: dict[str, tuple[Callable[[bytearray, Any], None], Callable[[Reader], Any], Callable[[Any], Any]]] = {
    "uint": (write_uint, Reader.uint, lambda v: v),
    "uint16": (write_uint16, Reader.uint16, lambda v: v),
    "uint32": (write_uint32, Reader.uint32, lambda v: v),
    "bool": (lambda o, v: o.append(1 if v else 0), Reader.bool, lambda v: v),
    "buffer": (write_buffer, Reader.buffer, bytes.fromhex),
    "string": (write_string, Reader.string, lambda v: v),
    "fixed32": (lambda o, v: write_fixed(o, v, 32), lambda r: r.fixed(32), bytes.fromhex),
    "array_uint": (lambda o, v: write_array(o, v, write_uint), lambda r: r.array(Reader.uint), lambda v: v),
    "ipv4_address": (write_ipv4_address, Reader.ipv4_address, addr),
    "array_ipv4_address": (lambda o, v: write_array(o, v, write_ipv4_address),
                           lambda r: r.array(Reader.ipv4_address), lambda v: [addr(a) for a in v]),
    "ipv6_address": (write_ipv6_address, Reader.ipv6_address, addr),
}

CASES = [(name, value, hexed) for name in CODECS for value, hexed in CE[name]]


@pytest.mark.parametrize(("codec", "value", "hexed"), CASES)
def test_compact_encoding_vectors(codec: str, value: Any, hexed: str) -> None:
    write, read, convert = CODECS[codec]
    expected = convert(value)
    assert encoded(write, expected) == hexed
    decoded = read(Reader(bytes.fromhex(hexed)))
    if codec == "ipv6_address":  # hosts decode in full form; compare the bytes they encode to
        assert encoded(write_ipv6_address, decoded) == hexed
    else:
        assert decoded == expected


DECODERS: dict[str, Callable[[Reader], Any]] = {
    "buffer_2x": Reader.optional_buffer,
    "buffer_3x": Reader.buffer,
    "uint": Reader.uint,
    "fixed32": lambda r: r.fixed(32),
    "array_uint": lambda r: r.array(Reader.uint),
}


@pytest.mark.parametrize("check", CE["decoder_checks"], ids=lambda c: f"{c['codec']}-{c['hex'][:12]}")
def test_decoder_behaviour(check: dict[str, Any]) -> None:
    reader = Reader(bytes.fromhex(check["hex"]))
    if "error" in check:
        with pytest.raises(DecodeError, match=check["error"]):
            DECODERS[check["codec"]](reader)
        return
    value = DECODERS[check["codec"]](reader)
    expected = check["value"]
    assert value == (bytes.fromhex(expected) if isinstance(expected, str) else expected)


@pytest.mark.parametrize("vector", RPC["node_ids"], ids=lambda v: f"{v['host']}:{v['port']}")
def test_node_ids(vector: dict[str, Any]) -> None:
    address = (vector["host"], vector["port"])
    assert encode_ipv4_address(address).hex() == vector["encoded"]
    assert node_id(address).hex() == vector["id"]


def optional(hexed: str | None) -> bytes | None:
    return None if hexed is None else bytes.fromhex(hexed)


@pytest.mark.parametrize("vector", RPC["messages"], ids=lambda v: v["name"])
def test_dht_rpc_datagrams(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    message = decode_message(data)
    if vector["type"] == "request":
        expected: Request | Response = Request(
            tid=vector["tid"], to=addr(vector["to"]), command=vector["command"], internal=vector["internal"],
            id=optional(vector["id"]), token=optional(vector["token"]), target=optional(vector["target"]),
            value=optional(vector["value"]),
        )
    else:
        expected = Response(
            tid=vector["tid"], to=addr(vector["to"]), id=optional(vector["id"]), token=optional(vector["token"]),
            closer_nodes=[addr(a) for a in vector["closer_nodes"]], error=vector["error"],
            value=optional(vector["value"]),
        )
    assert message == expected
    assert expected.encode() == data
    if "sender" in vector:
        assert node_id(addr(vector["sender"])) == message.id
