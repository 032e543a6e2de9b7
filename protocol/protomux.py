"""A minimal Protomux (protomux 3.x): channels over one framed stream, sans-IO.

Every frame (one secret-stream message) starts with ``uint channel, uint type``.  Channel 0 is
the control session: type 0 a batch, 1 open ``{uint local id, string protocol, optional
buffer id, handshake...}``, 2 reject ``{uint id}``, 3 close ``{uint id}``.  Any other channel
number is the *sender's* id of an open channel and ``type`` is the message index within its
protocol.  A batch is ``uint channel`` then ``{uint length, type + payload}`` entries, where a
zero length switches to the channel that follows.

A channel is open once both sides opened one with the same protocol and id.  :class:`Mux`
pairs them: ``open`` makes our side, an incoming open pairs with it (or, for a protocol we
accept, opens ours in reply); anything else is rejected.  Feed frames to :meth:`Mux.receive`;
it returns the events and the frames to send back.  Malformed frames raise DecodeError.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hyperswarm_hugin.protocol.encoding import Reader, write_buffer, write_string, write_uint
from hyperswarm_hugin.protocol.errors import DecodeError

CONTROL = 0
BATCH, OPEN, REJECT, CLOSE = 0, 1, 2, 3
MAX_CHANNELS = 256


@dataclass(frozen=True, slots=True)
class ChannelOpened:
    """Both sides opened channel ``local_id``; ``handshake`` is the rest of the remote's open."""

    local_id: int
    handshake: bytes


@dataclass(frozen=True, slots=True)
class ChannelMessage:
    local_id: int
    type: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class ChannelClosed:
    """The remote closed (or rejected) channel ``local_id``."""

    local_id: int


MuxEvent = ChannelOpened | ChannelMessage | ChannelClosed


@dataclass(slots=True)
class _Channel:
    protocol: str
    id: bytes | None
    remote_id: int | None = None
    closed: bool = False


@dataclass(slots=True)
class Mux:
    """Our channels on one stream and the remote's open ones, by id."""

    accepts: Callable[[str, bytes | None], bool] = lambda protocol, id: False
    channels: dict[int, _Channel] = field(default_factory=dict)
    _by_remote: dict[int, int] = field(default_factory=dict)
    _next_id: int = 1

    def open(self, protocol: str, id: bytes | None = None, handshake: bytes = b"") -> tuple[int, bytes]:
        """Open our side of a channel; its local id and the frame to send."""
        local_id = self._next_id
        self._next_id += 1
        self.channels[local_id] = _Channel(protocol, id)
        out = bytearray((CONTROL, OPEN))
        write_uint(out, local_id)
        write_string(out, protocol)
        write_buffer(out, id)
        out += handshake
        return local_id, bytes(out)

    def message(self, local_id: int, type: int, payload: bytes) -> bytes:
        """A message frame on an open channel (addressed by our id, as the remote knows it)."""
        out = bytearray()
        write_uint(out, local_id)
        write_uint(out, type)
        out += payload
        return bytes(out)

    def close(self, local_id: int) -> bytes:
        channel = self.channels.get(local_id)
        if channel is not None:
            channel.closed = True
        out = bytearray((CONTROL, CLOSE))
        write_uint(out, local_id)
        return bytes(out)

    def is_open(self, local_id: int) -> bool:
        channel = self.channels.get(local_id)
        return channel is not None and channel.remote_id is not None and not channel.closed

    def receive(self, frame: bytes) -> tuple[list[MuxEvent], list[bytes]]:
        """Decode one frame: what happened, and the frames to answer with."""
        events: list[MuxEvent] = []
        replies: list[bytes] = []
        if not frame:
            return events, replies
        r = Reader(frame)
        self._decode(r.uint(), r, len(frame), events, replies)
        return events, replies

    def _decode(self, remote_id: int, r: Reader, end: int, events: list[MuxEvent], replies: list[bytes]) -> None:
        kind = r.uint()
        if remote_id != CONTROL:
            local_id = self._by_remote.get(remote_id)
            if local_id is not None and not self.channels[local_id].closed:
                events.append(ChannelMessage(local_id, kind, r.data[r.pos:end]))
            return  # a message for a channel that is gone: ignored, as protomux does
        if kind == BATCH:
            self._batch(r, end, events, replies)
        elif kind == OPEN:
            self._on_open(r, end, events, replies)
        elif kind in (REJECT, CLOSE):
            self._on_close(r.uint(), kind == REJECT, events)

    def _batch(self, r: Reader, end: int, events: list[MuxEvent], replies: list[bytes]) -> None:
        channel = r.uint()
        while r.pos < end:
            length = r.uint()
            if length == 0:
                channel = r.uint()
                continue
            stop = r.pos + length
            if stop > end:
                raise DecodeError("a batched message runs past its frame")
            inner = Reader(r.data[:stop], r.pos)
            self._decode(channel, inner, stop, events, replies)
            r.pos = stop

    def _on_open(self, r: Reader, end: int, events: list[MuxEvent], replies: list[bytes]) -> None:
        remote_id = r.uint()
        protocol = r.string()
        channel_id = r.optional_buffer()
        handshake = r.data[r.pos:end]
        if remote_id == CONTROL or remote_id in self._by_remote:
            raise DecodeError("invalid protomux open")
        for local_id, channel in self.channels.items():
            if channel.remote_id is None and not channel.closed and channel.protocol == protocol \
                    and channel.id == channel_id:
                self._pair(local_id, remote_id, handshake, events)
                return
        if len(self.channels) < MAX_CHANNELS and self.accepts(protocol, channel_id):
            local_id, frame = self.open(protocol, channel_id)
            replies.append(frame)
            self._pair(local_id, remote_id, handshake, events)
            return
        out = bytearray((CONTROL, REJECT))
        write_uint(out, remote_id)
        replies.append(bytes(out))

    def _pair(self, local_id: int, remote_id: int, handshake: bytes, events: list[MuxEvent]) -> None:
        self.channels[local_id].remote_id = remote_id
        self._by_remote[remote_id] = local_id
        events.append(ChannelOpened(local_id, handshake))

    def _on_close(self, channel_number: int, rejected: bool, events: list[MuxEvent]) -> None:
        # A reject names our id; a close names the remote's.
        local_id = channel_number if rejected else self._by_remote.pop(channel_number, None)
        if local_id is None:
            return
        channel = self.channels.get(local_id)
        if channel is None or channel.closed:
            return
        channel.closed = True
        events.append(ChannelClosed(local_id))
