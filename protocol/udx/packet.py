"""UDX packet header (udx.md §2): 20 bytes, little-endian, then padding and payload."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hyperswarm_hugin.protocol.errors import DecodeError

MAGIC = 0xFF
VERSION = 0x01
HEADER_SIZE = 20
MAX_DATAGRAM = 2048  # libudx's receive buffer: never send more

DATA = 0x01
END = 0x02
SACK = 0x04
MESSAGE = 0x08
DESTROY = 0x10
HEARTBEAT = 0x20

DEFAULT_RWND = 4_194_304

_HEADER = struct.Struct("<BBBBIIII")
pack_header = _HEADER.pack
unpack_header = _HEADER.unpack_from


@dataclass(frozen=True, slots=True)
class Packet:
    """A decoded UDX packet; ``payload`` excludes the ``doff`` padding, ``sacks`` are [start, end) pairs."""

    type: int
    stream_id: int
    rwnd: int
    seq: int
    ack: int
    payload: bytes = b""
    sacks: tuple[tuple[int, int], ...] = ()
    doff: int = 0

    def encode(self) -> bytes:
        body = self.payload
        if self.type & SACK:
            body = b"".join(struct.pack("<II", s, e) for s, e in self.sacks)
        head = pack_header(MAGIC, VERSION, self.type, self.doff, self.stream_id, self.rwnd, self.seq, self.ack)
        return head + bytes(self.doff) + body


def udx_stream_id(data: bytes) -> int | None:
    """The stream id of a UDX packet (≥ 20 bytes starting ``FF 01``); None for any other datagram."""
    if len(data) >= HEADER_SIZE and data[0] == MAGIC and data[1] == VERSION:
        return int.from_bytes(data[4:8], "little")
    return None


def decode_packet(data: bytes) -> Packet:
    """Decode a UDX datagram or raise :class:`DecodeError`."""
    if udx_stream_id(data) is None:
        raise DecodeError("not a UDX packet")
    _, _, kind, doff, sid, rwnd, seq, ack = unpack_header(data)
    rest = len(data) - HEADER_SIZE
    if kind & SACK and not kind & (DATA | END | MESSAGE):
        length = doff if 0 < doff < rest else rest
        n = length // 8
        sacks = tuple(struct.unpack_from("<II", data, HEADER_SIZE + 8 * i) for i in range(n))
        return Packet(kind, sid, rwnd, seq, ack, b"", sacks, doff)
    if doff > rest:
        raise DecodeError("data offset past the end of the packet")
    return Packet(kind, sid, rwnd, seq, ack, data[HEADER_SIZE + doff:], (), doff)
