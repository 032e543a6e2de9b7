"""The dht-rpc datagram envelope: requests and responses (dht-rpc §2).

``decode_message`` turns a datagram into a :class:`Request` or :class:`Response`
or raises :class:`~hyperswarm_hugin.protocol.errors.DecodeError`; ``Request.encode`` and
``Response.encode`` produce the bytes Node's dht-rpc 6.x writes.
"""

from __future__ import annotations

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
        flags = (
            (RES_ID if self.id is not None else 0)
            | (RES_TOKEN if self.token is not None else 0)
            | (RES_CLOSER_NODES if self.closer_nodes else 0)
            | (RES_ERROR if self.error else 0)
            | (RES_VALUE if self.value is not None else 0)
        )
        out = bytearray((RESPONSE_ID,))
        write_uint(out, flags)
        write_uint16(out, self.tid)
        write_ipv4_address(out, self.to)
        if self.id is not None:
            write_fixed(out, self.id, 32)
        if self.token is not None:
            write_fixed(out, self.token, 32)
        if self.closer_nodes:
            write_uint(out, len(self.closer_nodes))
            out += b"".join(map(encode_ipv4_address, self.closer_nodes))
        if self.error:
            write_uint(out, self.error)
        if self.value is not None:
            write_buffer(out, self.value)
        return bytes(out)


def decode_message(data: bytes) -> Request | Response:
    """Decode one dht-rpc datagram; raise DecodeError if it is not one."""
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
