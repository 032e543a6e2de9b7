"""hyperdht payload codecs: the NoisePayload inside each handshake message, and the
holepunch payload (hyperdht.md §4.3, §4.4).

The NoisePayload carries Hugin's ``mid`` as flag 0x80, 64 bytes, after every
other member.  A payload whose version is not 1 decodes, as in Node, to a
:class:`NoisePayload` with only ``version`` set (the caller decides what to do).
Unknown flag bits are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nacl import bindings
from nacl.exceptions import CryptoError

from hyperswarm_hugin.protocol.encoding import (
    Address,
    Reader,
    write_fixed,
    write_ipv4_address,
    write_ipv6_address,
    write_uint,
)
from hyperswarm_hugin.protocol.errors import DecodeError
from hyperswarm_hugin.protocol.hyperdht.constants import Firewall

MID_SIZE = 64
UINT32_MAX = 0xFFFFFFFF  # udx stream ids and sequence numbers are uint32 (libudx)


@dataclass(frozen=True, slots=True)
class RelayInfo:
    relay_address: Address
    peer_address: Address


@dataclass(frozen=True, slots=True)
class HolepunchInfo:
    id: int
    relays: list[RelayInfo] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class UdxInfo:
    id: int
    seq: int = 0
    reusable_socket: bool = False
    version: int = 1


@dataclass(frozen=True, slots=True)
class RelayThroughInfo:
    public_key: bytes
    token: bytes
    version: int = 1


@dataclass(frozen=True, slots=True)
class NoisePayload:
    """The plaintext of a hyperdht Noise handshake message."""

    version: int = 1
    error: int = 0
    firewall: int = Firewall.UNKNOWN
    holepunch: HolepunchInfo | None = None
    addresses4: list[Address] = field(default_factory=list)
    addresses6: list[Address] = field(default_factory=list)
    udx: UdxInfo | None = None
    secret_stream_version: int | None = None
    relay_through: RelayThroughInfo | None = None
    relay_addresses: list[Address] | None = None
    mid: bytes | None = None

    def encode(self) -> bytes:
        if self.mid is not None and len(self.mid) != MID_SIZE:
            raise ValueError(f"mid is {MID_SIZE} bytes, got {len(self.mid)}")
        flags = (
            (0x01 if self.holepunch else 0)
            | (0x02 if self.addresses4 else 0)
            | (0x04 if self.addresses6 else 0)
            | (0x08 if self.udx else 0)
            | (0x10 if self.secret_stream_version is not None else 0)
            | (0x20 if self.relay_through else 0)
            | (0x40 if self.relay_addresses is not None else 0)
            | (0x80 if self.mid is not None else 0)
        )
        out = bytearray()
        write_uint(out, 1)
        write_uint(out, flags)
        write_uint(out, self.error)
        write_uint(out, self.firewall)
        if self.holepunch:
            write_uint(out, self.holepunch.id)
            write_uint(out, len(self.holepunch.relays))
            for relay in self.holepunch.relays:
                write_ipv4_address(out, relay.relay_address)
                write_ipv4_address(out, relay.peer_address)
        if self.addresses4:
            _write_addresses(out, self.addresses4)
        if self.addresses6:
            write_uint(out, len(self.addresses6))
            for addr in self.addresses6:
                write_ipv6_address(out, addr)
        if self.udx:
            write_uint(out, 1)
            write_uint(out, 1 if self.udx.reusable_socket else 0)
            write_uint(out, self.udx.id)
            write_uint(out, self.udx.seq)
        if self.secret_stream_version is not None:
            write_uint(out, 1)
        if self.relay_through:
            write_uint(out, 1)
            write_uint(out, 0)
            write_fixed(out, self.relay_through.public_key, 32)
            write_fixed(out, self.relay_through.token, 32)
        if self.relay_addresses is not None:
            _write_addresses(out, self.relay_addresses)
        if self.mid is not None:
            out += self.mid
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> NoisePayload:
        """Decode or raise :class:`~hyperswarm_hugin.protocol.errors.DecodeError`."""
        r = Reader(data)
        version = r.uint()
        if version != 1:
            return cls(version=version)
        flags = r.uint()
        error = r.uint()
        firewall = r.uint()
        holepunch = None
        if flags & 0x01:
            hp_id = r.uint()
            holepunch = HolepunchInfo(hp_id, r.array(_read_relay))
        addresses4 = r.array(Reader.ipv4_address) if flags & 0x02 else []
        addresses6 = r.array(Reader.ipv6_address) if flags & 0x04 else []
        udx = None
        if flags & 0x08:
            udx_version = r.uint()
            features = r.uint()
            udx_id, udx_seq = r.uint(), r.uint()
            if udx_id > UINT32_MAX or udx_seq > UINT32_MAX:
                raise DecodeError("a udx stream id or seq is a uint32")
            udx = UdxInfo(id=udx_id, seq=udx_seq, reusable_socket=bool(features & 1), version=udx_version)
        secret_stream_version = r.uint() if flags & 0x10 else None
        relay_through = None
        if flags & 0x20:
            rt_version = r.uint()
            r.uint()
            relay_through = RelayThroughInfo(r.fixed(32), r.fixed(32), rt_version)
        relay_addresses = r.array(Reader.ipv4_address) if flags & 0x40 else None
        mid = r.fixed(MID_SIZE) if flags & 0x80 else None
        return cls(1, error, firewall, holepunch, addresses4, addresses6, udx, secret_stream_version,
                   relay_through, relay_addresses, mid)


def _read_relay(r: Reader) -> RelayInfo:
    return RelayInfo(r.ipv4_address(), r.ipv4_address())


def _write_addresses(out: bytearray, addresses: list[Address]) -> None:
    write_uint(out, len(addresses))
    for addr in addresses:
        write_ipv4_address(out, addr)


@dataclass(frozen=True, slots=True)
class HolepunchPayload:
    """The plaintext of a PEER_HOLEPUNCH round (encrypted with the holepunch secret)."""

    error: int = 0
    firewall: int = Firewall.UNKNOWN
    round: int = 0
    connected: bool = False
    punching: bool = False
    addresses: list[Address] | None = None
    remote_address: Address | None = None
    token: bytes | None = None
    remote_token: bytes | None = None

    def encode(self) -> bytes:
        flags = (
            (0x01 if self.connected else 0)
            | (0x02 if self.punching else 0)
            | (0x04 if self.addresses is not None else 0)
            | (0x08 if self.remote_address is not None else 0)
            | (0x10 if self.token is not None else 0)
            | (0x20 if self.remote_token is not None else 0)
        )
        out = bytearray()
        write_uint(out, flags)
        write_uint(out, self.error)
        write_uint(out, self.firewall)
        write_uint(out, self.round)
        if self.addresses is not None:
            _write_addresses(out, self.addresses)
        if self.remote_address is not None:
            write_ipv4_address(out, self.remote_address)
        if self.token is not None:
            write_fixed(out, self.token, 32)
        if self.remote_token is not None:
            write_fixed(out, self.remote_token, 32)
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> HolepunchPayload:
        r = Reader(data)
        flags = r.uint()
        error, firewall, rnd = r.uint(), r.uint(), r.uint()
        return cls(
            error=error,
            firewall=firewall,
            round=rnd,
            connected=bool(flags & 0x01),
            punching=bool(flags & 0x02),
            addresses=r.array(Reader.ipv4_address) if flags & 0x04 else None,
            remote_address=r.ipv4_address() if flags & 0x08 else None,
            token=r.fixed(32) if flags & 0x10 else None,
            remote_token=r.fixed(32) if flags & 0x20 else None,
        )


def seal_holepunch(payload: HolepunchPayload, secret: bytes, nonce: bytes | None = None) -> bytes:
    """Encrypt a holepunch payload: ``nonce (24) ‖ crypto_secretbox(plaintext)`` (hyperdht.md §8)."""
    nonce = nonce if nonce is not None else bindings.randombytes(24)
    return nonce + bindings.crypto_secretbox(payload.encode(), nonce, secret)


def open_holepunch(data: bytes, secret: bytes) -> HolepunchPayload:
    """Decrypt and decode a holepunch payload; DecodeError when it is forged or malformed."""
    if len(data) < 40:
        raise DecodeError("holepunch payload too short")
    try:
        plain = bindings.crypto_secretbox_open(data[24:], data[:24], secret)
    except CryptoError:
        raise DecodeError("holepunch payload does not authenticate") from None
    return HolepunchPayload.decode(plain)
