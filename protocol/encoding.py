"""compact-encoding primitives (see docs/compact-encoding.md).

A :class:`Reader` walks a buffer and raises :class:`DecodeError` on anything
malformed; writers append to a ``bytearray``.  Integers are little-endian, the
``uint`` varint uses the ``FD``/``FE``/``FF`` prefixes, IPv4 hosts are in
network order and ports little-endian.  Trailing bytes are not an error, as in
the JavaScript decoders.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable
from typing import TypeVar

from hyperswarm_hugin.protocol.errors import DecodeError

T = TypeVar("T")

MAX_ARRAY_LENGTH = 0x100000
MAX_SAFE_INTEGER = 2**53 - 1

Address = tuple[str, int]
"""An IPv4 ``(host, port)`` pair."""


class Reader:
    """A cursor over bytes that decodes compact-encoding values."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes | bytearray | memoryview, pos: int = 0) -> None:
        self.data = bytes(data)
        self.pos = pos
        self.end = len(self.data)

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def _take(self, n: int) -> bytes:
        pos = self.pos
        if self.end - pos < n:
            raise DecodeError("out of bounds")
        self.pos = pos + n
        return self.data[pos : pos + n]

    def uint8(self) -> int:
        pos = self.pos
        if pos >= self.end:
            raise DecodeError("out of bounds")
        self.pos = pos + 1
        return self.data[pos]

    def uint16(self) -> int:
        return int.from_bytes(self._take(2), "little")

    def uint32(self) -> int:
        return int.from_bytes(self._take(4), "little")

    def uint64(self) -> int:
        return int.from_bytes(self._take(8), "little")

    def uint(self) -> int:
        first = self.uint8()
        if first <= 0xFC:
            return first
        if first == 0xFD:
            return self.uint16()
        if first == 0xFE:
            return self.uint32()
        value = self.uint64()
        if value > MAX_SAFE_INTEGER:
            raise DecodeError("uint above 2^53-1")
        return value

    def bool(self) -> bool:
        return self.uint8() == 1

    def fixed(self, n: int) -> bytes:
        return self._take(n)

    def buffer(self) -> bytes:
        """A length-prefixed byte string (an empty one decodes as ``b""``)."""
        return self._take(self.uint())

    def optional_buffer(self) -> bytes | None:
        """A length-prefixed byte string where length 0 means absent (compact-encoding 2.x)."""
        data = self._take(self.uint())
        return data if data else None

    def string(self) -> str:
        try:
            return self.buffer().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"invalid utf-8: {exc.reason}") from None

    def ipv4(self) -> str:
        b = self._take(4)
        return f"{b[0]}.{b[1]}.{b[2]}.{b[3]}"

    def ipv4_address(self) -> Address:
        b = self._take(6)
        return (f"{b[0]}.{b[1]}.{b[2]}.{b[3]}", b[4] | (b[5] << 8))

    def ipv6_address(self) -> Address:
        b = self._take(18)
        groups = ":".join(f"{int.from_bytes(b[i : i + 2], 'big'):x}" for i in range(0, 16, 2))
        return (groups, b[16] | (b[17] << 8))

    def array(self, item: Callable[[Reader], T]) -> list[T]:
        n = self.uint()
        if n > MAX_ARRAY_LENGTH:
            raise DecodeError("array is too big")
        return [item(self) for _ in range(n)]


def write_uint(out: bytearray, n: int) -> None:
    """Append ``n`` as a minimal ``uint`` varint."""
    if n < 0:
        raise ValueError(f"uint must not be negative: {n}")
    if n <= 0xFC:
        out.append(n)
    elif n <= 0xFFFF:
        out.append(0xFD)
        out += n.to_bytes(2, "little")
    elif n <= 0xFFFFFFFF:
        out.append(0xFE)
        out += n.to_bytes(4, "little")
    elif n <= MAX_SAFE_INTEGER:
        out.append(0xFF)
        out += n.to_bytes(8, "little")
    else:
        raise ValueError(f"uint above 2^53-1: {n}")


def write_uint16(out: bytearray, n: int) -> None:
    out += n.to_bytes(2, "little")


def write_uint32(out: bytearray, n: int) -> None:
    out += n.to_bytes(4, "little")


def write_fixed(out: bytearray, data: bytes, n: int) -> None:
    if len(data) != n:
        raise ValueError(f"expected {n} bytes, got {len(data)}")
    out += data


def write_buffer(out: bytearray, data: bytes | None) -> None:
    """Append a length-prefixed byte string; ``None`` is written as length 0."""
    if data is None:
        out.append(0)
        return
    write_uint(out, len(data))
    out += data


def write_string(out: bytearray, text: str) -> None:
    write_buffer(out, text.encode("utf-8"))


def ipv4_bytes(host: str) -> bytes:
    """The four bytes of a dotted-quad IPv4 host, checked."""
    parts = host.split(".")
    if len(parts) != 4:
        raise ValueError(f"not an IPv4 address: {host!r}")
    try:
        octets = bytes(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"not an IPv4 address: {host!r}") from None
    return octets


@functools.lru_cache(maxsize=8192)
def encode_ipv4_address(addr: Address) -> bytes:
    """The 6 bytes of ``(host, port)``: host in network order, port little-endian (cached)."""
    host, port = addr
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"port out of range: {port}")
    return ipv4_bytes(host) + bytes((port & 0xFF, port >> 8))


def write_ipv4_address(out: bytearray, addr: Address) -> None:
    out += encode_ipv4_address(addr)


def write_ipv6_address(out: bytearray, addr: Address) -> None:
    host, port = addr
    out += ipaddress.IPv6Address(host).packed
    out += port.to_bytes(2, "little")


def write_array(out: bytearray, items: list[T], write_item: Callable[[bytearray, T], None]) -> None:
    write_uint(out, len(items))
    for item in items:
        write_item(out, item)
