"""hyperdht's request values (hyperdht.md §2-§4): commands, relay modes and their codecs.

Payloads follow compact-encoding 2.x: a zero-length buffer means "absent".  Every
``decode_*`` raises :class:`~hyperswarm_hugin.protocol.errors.DecodeError` on malformed input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hyperswarm_hugin.protocol.encoding import (
    Address,
    Reader,
    write_buffer,
    write_fixed,
    write_ipv4_address,
    write_uint,
)

# Commands (dht-rpc requests with the internal flag clear).
PEER_HANDSHAKE = 0
PEER_HOLEPUNCH = 1
FIND_PEER = 2
LOOKUP = 3
ANNOUNCE = 4
UNANNOUNCE = 5
MUTABLE_PUT = 6
MUTABLE_GET = 7
IMMUTABLE_PUT = 8
IMMUTABLE_GET = 9

# Relay modes.
FROM_CLIENT = 0
FROM_SERVER = 1
FROM_RELAY = 2
FROM_SECOND_RELAY = 3
REPLY = 4

# dht-rpc error codes hyperdht adds.
SEQ_REUSED = 16
SEQ_TOO_LOW = 17


def _write_addresses(out: bytearray, addresses: list[Address]) -> None:
    write_uint(out, len(addresses))
    for addr in addresses:
        write_ipv4_address(out, addr)


@dataclass(frozen=True, slots=True)
class Handshake:
    """The value of PEER_HANDSHAKE."""

    mode: int
    noise: bytes
    peer_address: Address | None = None
    relay_address: Address | None = None

    def encode(self) -> bytes:
        out = bytearray()
        write_uint(out, (1 if self.peer_address else 0) | (2 if self.relay_address else 0))
        write_uint(out, self.mode)
        write_buffer(out, self.noise)
        if self.peer_address:
            write_ipv4_address(out, self.peer_address)
        if self.relay_address:
            write_ipv4_address(out, self.relay_address)
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> Handshake:
        r = Reader(data)
        flags = r.uint()
        mode = r.uint()
        noise = r.buffer()
        peer = r.ipv4_address() if flags & 1 else None
        relay = r.ipv4_address() if flags & 2 else None
        return cls(mode, noise, peer, relay)


@dataclass(frozen=True, slots=True)
class Holepunch:
    """The value of PEER_HOLEPUNCH."""

    mode: int
    id: int
    payload: bytes
    peer_address: Address | None = None

    def encode(self) -> bytes:
        out = bytearray()
        write_uint(out, 1 if self.peer_address else 0)
        write_uint(out, self.mode)
        write_uint(out, self.id)
        write_buffer(out, self.payload)
        if self.peer_address:
            write_ipv4_address(out, self.peer_address)
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> Holepunch:
        r = Reader(data)
        flags = r.uint()
        mode = r.uint()
        hp_id = r.uint()
        payload = r.buffer()
        return cls(mode, hp_id, payload, r.ipv4_address() if flags & 1 else None)


@dataclass(frozen=True, slots=True)
class PeerRecord:
    """A stored ``peer``: a public key and up to three relay addresses."""

    public_key: bytes
    relay_addresses: list[Address] = field(default_factory=list)

    def encode(self) -> bytes:
        out = bytearray()
        write_fixed(out, self.public_key, 32)
        _write_addresses(out, self.relay_addresses)
        return bytes(out)

    @classmethod
    def read(cls, r: Reader) -> PeerRecord:
        return cls(r.fixed(32), r.array(Reader.ipv4_address))

    @classmethod
    def decode(cls, data: bytes) -> PeerRecord:
        return cls.read(Reader(data))


@dataclass(frozen=True, slots=True)
class LookupReply:
    """The value of a LOOKUP reply: up to 20 peers and the topic's bump."""

    peers: list[PeerRecord]
    bump: int = 0

    def encode(self) -> bytes:
        out = bytearray()
        write_uint(out, len(self.peers))
        for peer in self.peers:
            out += peer.encode()
        write_uint(out, self.bump)
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> LookupReply:
        r = Reader(data)
        peers = r.array(PeerRecord.read)
        return cls(peers, r.uint() if r.remaining else 0)


@dataclass(frozen=True, slots=True)
class Announce:
    """The value of ANNOUNCE and UNANNOUNCE."""

    peer: PeerRecord | None = None
    refresh: bytes | None = None
    signature: bytes | None = None
    bump: int = 0

    def encode(self) -> bytes:
        out = bytearray()
        write_uint(out, (1 if self.peer else 0) | (2 if self.refresh else 0) | (4 if self.signature else 0)
                   | (8 if self.bump else 0))
        if self.peer:
            out += self.peer.encode()
        if self.refresh:
            write_fixed(out, self.refresh, 32)
        if self.signature:
            write_fixed(out, self.signature, 64)
        if self.bump:
            write_uint(out, self.bump)
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> Announce:
        r = Reader(data)
        flags = r.uint()
        peer = PeerRecord.read(r) if flags & 1 else None
        refresh = r.fixed(32) if flags & 2 else None
        signature = r.fixed(64) if flags & 4 else None
        bump = r.uint() if flags & 8 else 0
        return cls(peer, refresh, signature, bump)


def encode_mutable_signable(seq: int, value: bytes) -> bytes:
    out = bytearray()
    write_uint(out, seq)
    write_buffer(out, value)
    return bytes(out)


@dataclass(frozen=True, slots=True)
class MutablePut:
    public_key: bytes
    seq: int
    value: bytes
    signature: bytes

    def encode(self) -> bytes:
        out = bytearray()
        write_fixed(out, self.public_key, 32)
        write_uint(out, self.seq)
        write_buffer(out, self.value)
        write_fixed(out, self.signature, 64)
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> MutablePut:
        r = Reader(data)
        return cls(r.fixed(32), r.uint(), r.buffer(), r.fixed(64))


@dataclass(frozen=True, slots=True)
class MutableRecord:
    """A stored mutable value (the MUTABLE_GET reply)."""

    seq: int
    value: bytes
    signature: bytes

    def encode(self) -> bytes:
        out = bytearray()
        write_uint(out, self.seq)
        write_buffer(out, self.value)
        write_fixed(out, self.signature, 64)
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> MutableRecord:
        r = Reader(data)
        return cls(r.uint(), r.buffer(), r.fixed(64))
