"""What a :class:`~hyperswarm_hugin.protocol.udx.stream.UdxStream` reports through ``next_event()``.

Events report what the peer or the clock did, never the caller's own calls (``connect``,
``write``, ``end``, ``destroy`` return at once; a ``destroy`` is still followed by the
:class:`StreamClosed` that every stream ends with).  For one stream they come in this order:

- :class:`DataReceived` any number of times, then at most one :class:`StreamEnded`;
- :class:`MessageReceived` at any point before the close, in arrival order;
- at most one :class:`StreamClosed`, always last.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class StreamError(StrEnum):
    """Why a stream failed (``error`` of :class:`StreamClosed`), named as libudx names them."""

    ECONNRESET = "ECONNRESET"
    """The peer destroyed its stream (a DESTROY packet)."""
    ETIMEDOUT = "ETIMEDOUT"
    """A packet of ours went unacknowledged through seven retransmission timeouts."""


@dataclass(slots=True)  # not frozen: made per received batch, and frozen doubles __init__'s cost
class DataReceived:
    """Bytes delivered in order since the previous ``DataReceived``: everything that arrived
    in sequence until the event was taken, in one piece (never empty)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """One UDX MESSAGE datagram's payload (unordered and unreliable, as the peer sent it)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class StreamEnded:
    """The peer ended its side (its END arrived in order): no more data will come."""


@dataclass(frozen=True, slots=True)
class StreamClosed:
    """The stream is closed: both sides ended (``error`` None), we destroyed it (None), or it
    failed (``error`` says why).  Nothing follows."""

    error: StreamError | None


UdxEvent = DataReceived | MessageReceived | StreamEnded | StreamClosed
