"""The dht-rpc datagram envelope: requests and responses (dht-rpc §2).

``decode_message`` turns a datagram into a :class:`Request` or :class:`Response`
or raises :class:`~hyperswarm_hugin.protocol.errors.DecodeError`; ``Request.encode`` and
``Response.encode`` produce the bytes Node's dht-rpc 6.x writes.  A node answering
builds its reply with :func:`encode_response` from addresses its table keeps encoded.

Decoding runs once per datagram, so the usual shapes (every varint below 0xFD) are read by
plain indexing; anything else, truncated or not, goes through :class:`Reader`, which raises.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from hyperswarm_hugin.protocol.encoding import (
    Address,
    Reader,
    encode_ipv4_address,
    write_buffer,
    write_fixed,
    write_ipv4_address,
    write_uint,
    write_uint16,
)
from hyperswarm_hugin.protocol.errors import DecodeError

VERSION = 0b11
REQUEST_ID = (0b0000 << 4) | VERSION  # 0x03
RESPONSE_ID = (0b0001 << 4) | VERSION  # 0x13

# Request flags.
REQ_ID = 0x01
REQ_TOKEN = 0x02
REQ_INTERNAL = 0x04
REQ_TARGET = 0x08
REQ_VALUE = 0x10

# Response flags.
RES_ID = 0x01
RES_TOKEN = 0x02
RES_CLOSER_NODES = 0x04
RES_ERROR = 0x08
RES_VALUE = 0x10

# Internal commands (flag REQ_INTERNAL set).
PING = 0
PING_NAT = 1
FIND_NODE = 2
DOWN_HINT = 3
DELAYED_PING = 4
COMMAND_NAMES = {PING: "ping", PING_NAT: "ping_nat", FIND_NODE: "find_node", DOWN_HINT: "down_hint",
                 DELAYED_PING: "delayed_ping"}

# Error codes.
OK = 0
UNKNOWN_COMMAND = 1
INVALID_TOKEN = 2


@dataclass(slots=True)
class Request:
    """A dht-rpc request; ``to`` is where the sender sends it, as the sender knows it."""

    tid: int
    to: Address
    command: int
    internal: bool = False
    id: bytes | None = None
    token: bytes | None = None
    target: bytes | None = None
    value: bytes | None = None

    def encode(self) -> bytes:
        flags = (
            (REQ_ID if self.id is not None else 0)
            | (REQ_TOKEN if self.token is not None else 0)
            | (REQ_INTERNAL if self.internal else 0)
            | (REQ_TARGET if self.target is not None else 0)
            | (REQ_VALUE if self.value is not None else 0)
        )
        out = bytearray((REQUEST_ID,))
        write_uint(out, flags)
        write_uint16(out, self.tid)
        write_ipv4_address(out, self.to)
        if self.id is not None:
            write_fixed(out, self.id, 32)
        if self.token is not None:
            write_fixed(out, self.token, 32)
        write_uint(out, self.command)
        if self.target is not None:
            write_fixed(out, self.target, 32)
        if self.value is not None:
            write_buffer(out, self.value)
        return bytes(out)


@dataclass(slots=True)
class Response:
    """A dht-rpc response; ``to`` is the requester's address as the responder saw it."""

    tid: int
    to: Address
    id: bytes | None = None
    token: bytes | None = None
    closer_nodes: list[Address] = field(default_factory=list)
    error: int = OK
    value: bytes | None = None

    def encode(self) -> bytes:
        return encode_response(self.tid, self.to, self.id, self.token,
                               list(map(encode_ipv4_address, self.closer_nodes)), self.error, self.value)


def encode_response(tid: int, to: Address, id: bytes | None, token: bytes | None, closer: list[bytes],
                    error: int, value: bytes | None) -> bytes:
    """A response's bytes; ``closer`` holds the closer nodes' addresses already encoded."""
    flags = (
        (RES_ID if id is not None else 0)
        | (RES_TOKEN if token is not None else 0)
        | (RES_CLOSER_NODES if closer else 0)
        | (RES_ERROR if error else 0)
        | (RES_VALUE if value is not None else 0)
    )
    out = bytearray((RESPONSE_ID, flags))  # flags < 0xFD: a one-byte uint
    out += tid.to_bytes(2, "little")
    out += encode_ipv4_address(to)
    if id is not None:
        if len(id) != 32:
            write_fixed(out, id, 32)  # raises
        out += id
    if token is not None:
        if len(token) != 32:
            write_fixed(out, token, 32)  # raises
        out += token
    if closer:
        write_uint(out, len(closer))
        out += b"".join(closer)
    if error:
        write_uint(out, error)
    if value is not None:
        write_buffer(out, value)
    return bytes(out)


@functools.lru_cache(maxsize=1024)
def _address(raw: bytes) -> Address:
    """An encoded IPv4 address (6 bytes) decoded; cached: most are our own or a few peers'."""
    return (f"{raw[0]}.{raw[1]}.{raw[2]}.{raw[3]}", raw[4] | (raw[5] << 8))


def _decode_request(data: bytes) -> Request | None:
    """The usual request shapes by indexing; None for anything else (the Reader decides)."""
    flags = data[1]
    end = len(data)
    if flags > 0xFC or end < 11:
        return None
    pos = 10
    node = token = target = value = None
    if flags & REQ_ID:
        node = data[pos : pos + 32]
        pos += 32
    if flags & REQ_TOKEN:
        token = data[pos : pos + 32]
        pos += 32
    if pos >= end:
        return None
    command = data[pos]
    if command > 0xFC:
        return None
    pos += 1
    if flags & REQ_TARGET:
        target = data[pos : pos + 32]
        pos += 32
    if flags & REQ_VALUE:
        if pos >= end or data[pos] > 0xFC:
            return None
        size = data[pos]
        value = data[pos + 1 : pos + 1 + size]
        pos += 1 + size
    if pos > end:  # something above was cut short
        return None
    return Request(data[2] | (data[3] << 8), _address(data[4:10]), command, bool(flags & REQ_INTERNAL),
                   node, token, target, value)


def _decode_response(data: bytes) -> Response | None:
    """The usual response shapes by indexing; None for anything else (the Reader decides)."""
    flags = data[1]
    end = len(data)
    if flags > 0xFC or end < 10:
        return None
    pos = 10
    node = token = value = None
    closer: list[Address] = []
    error = OK
    if flags & RES_ID:
        node = data[pos : pos + 32]
        pos += 32
    if flags & RES_TOKEN:
        token = data[pos : pos + 32]
        pos += 32
    if flags & RES_CLOSER_NODES:
        if pos >= end or data[pos] > 0xFC:
            return None
        stop = pos + 1 + 6 * data[pos]
        if stop > end:
            return None
        closer = [_address(data[i : i + 6]) for i in range(pos + 1, stop, 6)]
        pos = stop
    if flags & RES_ERROR:
        if pos >= end or data[pos] > 0xFC:
            return None
        error = data[pos]
        pos += 1
    if flags & RES_VALUE:
        if pos >= end or data[pos] > 0xFC:
            return None
        size = data[pos]
        value = data[pos + 1 : pos + 1 + size]
        pos += 1 + size
    if pos > end:
        return None
    return Response(data[2] | (data[3] << 8), _address(data[4:10]), node, token, closer, error, value)


def decode_message(data: bytes) -> Request | Response:
    """Decode one dht-rpc datagram; raise DecodeError if it is not one."""
    if len(data) >= 2 and type(data) is bytes:
        kind = data[0]
        fast = _decode_request(data) if kind == REQUEST_ID else _decode_response(data) if kind == RESPONSE_ID \
            else None
        if fast is not None:
            return fast
    return _decode_with_reader(data)


def _decode_with_reader(data: bytes) -> Request | Response:
    if len(data) < 2:
        raise DecodeError("datagram too short")
    r = Reader(data, 1)
    kind = data[0]
    if kind == REQUEST_ID:
        flags = r.uint()
        tid = r.uint16()
        to = r.ipv4_address()
        node = r.fixed(32) if flags & REQ_ID else None
        token = r.fixed(32) if flags & REQ_TOKEN else None
        command = r.uint()
        target = r.fixed(32) if flags & REQ_TARGET else None
        value = r.buffer() if flags & REQ_VALUE else None
        return Request(tid, to, command, bool(flags & REQ_INTERNAL), node, token, target, value)
    if kind == RESPONSE_ID:
        flags = r.uint()
        tid = r.uint16()
        to = r.ipv4_address()
        node = r.fixed(32) if flags & RES_ID else None
        token = r.fixed(32) if flags & RES_TOKEN else None
        closer = r.array(Reader.ipv4_address) if flags & RES_CLOSER_NODES else []
        error = r.uint() if flags & RES_ERROR else OK
        value = r.buffer() if flags & RES_VALUE else None
        return Response(tid, to, node, token, closer, error, value)
    raise DecodeError(f"not a dht-rpc message (first byte 0x{kind:02x})")
