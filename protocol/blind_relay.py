"""The blind-relay protocol (blind-relay 1.6): its two messages on a Protomux channel named
``blind-relay``, and the relay's pairing of two requests with the same token (sans-IO).

``pair {bitfield(7) isInitiator, fixed32 token, uint stream id, uint seq}`` is message 0 both
ways: a peer asks to be paired, naming its raw UDX stream; the relay answers each side with the
id of the relay stream it made for it.  ``unpair {bitfield(7) flags, fixed32 token}`` is
message 1.  The channel id is the relay client's public key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hyperswarm_hugin.protocol.encoding import Reader, write_fixed, write_uint
from hyperswarm_hugin.protocol.errors import DecodeError

PROTOCOL = "blind-relay"
PAIR, UNPAIR = 0, 1
TOKEN_SIZE = 32
PAIRING_TIMEOUT = 15.0  # a client gives up on an unanswered pair after 15 s (hyperdht)


@dataclass(frozen=True, slots=True)
class Pair:
    is_initiator: bool
    token: bytes
    id: int
    seq: int = 0

    def encode(self) -> bytes:
        if len(self.token) != TOKEN_SIZE:
            raise ValueError("a pairing token is 32 bytes")
        out = bytearray((1 if self.is_initiator else 0,))
        write_fixed(out, self.token, TOKEN_SIZE)
        write_uint(out, self.id)
        write_uint(out, self.seq)
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> Pair:
        r = Reader(data)
        flags = _bitfield(r)
        pair = cls(bool(flags & 1), r.fixed(TOKEN_SIZE), r.uint(), r.uint())
        if pair.id > 0xFFFFFFFF or pair.seq > 0xFFFFFFFF:
            raise DecodeError("a udx stream id or seq is a uint32")
        return pair


@dataclass(frozen=True, slots=True)
class Unpair:
    token: bytes

    def encode(self) -> bytes:
        out = bytearray((0,))
        write_fixed(out, self.token, TOKEN_SIZE)
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> Unpair:
        r = Reader(data)
        _bitfield(r)
        return cls(r.fixed(TOKEN_SIZE))


def _bitfield(r: Reader) -> int:
    """compact-encoding-bitfield: one byte up to 0xfc, else a width marker and 2/4/8 bytes."""
    first = r.uint8()
    if first <= 0xFC:
        return first
    width = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
    return int.from_bytes(r.fixed(width), "little")


@dataclass(slots=True)
class Link:
    """One side of a pairing: the session (connection) it came on, its role and raw stream id."""

    session: object
    is_initiator: bool
    remote_id: int


@dataclass(slots=True)
class Pairings:
    """The relay's pending pairings by token; ``request`` returns both links once a token has
    an initiator and a responder (each side at most once), else None.  Bounded per session."""

    max_pending: int = 4096
    pending: dict[bytes, list[Link | None]] = field(default_factory=dict)

    def request(self, session: object, pair: Pair) -> tuple[Link, Link] | None:
        links = self.pending.get(pair.token)
        if links is None:
            if len(self.pending) >= self.max_pending:
                return None
            links = self.pending[pair.token] = [None, None]
        slot = 1 if pair.is_initiator else 0
        if links[slot] is not None:
            return None  # the same side asked twice: the first one stands
        links[slot] = Link(session, pair.is_initiator, pair.id)
        responder, initiator = links
        if responder is None or initiator is None:
            return None
        del self.pending[pair.token]
        return initiator, responder

    def cancel(self, token: bytes) -> bool:
        return self.pending.pop(token, None) is not None

    def drop_session(self, session: object) -> int:
        """Forget the pending requests of a session that closed; how many there were."""
        gone = [t for t, links in self.pending.items() if any(lk is not None and lk.session is session for lk in links)]
        for token in gone:
            del self.pending[token]
        return len(gone)
