"""@hyperswarm/secret-stream framing, sans-IO (secret-stream.md).

Each direction is a sequence of ``uint24-LE length ‖ body`` frames.  The first
frame is the header message (our role's stream id and the xchacha20poly1305
secretstream header); every later frame is one encrypted application message.
Message boundaries are kept: one write is one frame is one delivered message.
"""

from __future__ import annotations

from typing import Any

from nacl import bindings
from nacl.exceptions import CryptoError

from hyperswarm_hugin.protocol.namespaces import NS_SS_INITIATOR, NS_SS_RESPONDER, keyed_hash
from hyperswarm_hugin.protocol.namespaces import NS_SS_SEND as NS_SEND

HEADER_BODY = 56
ABYTES = 17
MAX_MESSAGE = (1 << 24) - 1 - ABYTES
TAG_MESSAGE = bindings.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
SCRATCH_MAX = 65536 + ABYTES
"""Largest scratch buffer a stream keeps for its crypto calls (bigger messages get one per call)."""

try:
    # PyNaCl's cffi handle on libsodium.  Per message, its bindings check their arguments in
    # Python (a dozen calls) and allocate; the same two libsodium calls made here directly cost
    # less than half (one 32-byte message: ~2.1 µs → ~1.0 µs to encrypt, ~2.8 µs → ~1.0 µs to
    # decrypt on the bench machine).
    from nacl import _sodium
except ImportError:  # a PyNaCl without the module: its public bindings
    _sodium = None
_ffi: Any = _sodium.ffi if _sodium is not None else None
_lib: Any = _sodium.lib if _sodium is not None else None


class SecretStreamError(Exception):
    """A frame that fails the checks; the connection must be destroyed."""


def stream_id(handshake_hash: bytes, initiator: bool) -> bytes:
    return keyed_hash(NS_SS_INITIATOR if initiator else NS_SS_RESPONDER, handshake_hash)


class SecretStream:
    """Encrypts our messages into frames and decrypts the peer's frames into messages."""

    def __init__(self, *, is_initiator: bool, tx: bytes, rx: bytes, handshake_hash: bytes,
                 header: bytes | None = None) -> None:
        if len(tx) < 32 or len(rx) < 32 or len(handshake_hash) != 64:
            raise ValueError("secret-stream needs 32-byte tx/rx keys and the 64-byte handshake hash")
        self.is_initiator = is_initiator
        self._rx = rx[:32]
        self._remote_id = stream_id(handshake_hash, not is_initiator)
        self._push = bindings.crypto_secretstream_xchacha20poly1305_state()
        if header is None:
            header = bindings.crypto_secretstream_xchacha20poly1305_init_push(self._push, tx[:32])
        else:  # a pinned header, for test vectors: the same state init_push would give
            bindings.crypto_secretstream_xchacha20poly1305_init_pull(self._push, header, tx[:32])
        self._header_frame = (HEADER_BODY.to_bytes(3, "little") + stream_id(handshake_hash, is_initiator)
                              + bytes(header))
        self._pull: bindings.crypto_secretstream_xchacha20poly1305_state | None = None
        self._buffer = bytearray()
        self._scratch: Any = None  # a cffi buffer for libsodium's output, grown to SCRATCH_MAX
        self._scratch_size = -1  # none yet: even an empty message gets a real buffer
        self._tag: Any = _ffi.new("unsigned char *") if _ffi is not None else None  # pull's tag out
        self.send_key = keyed_hash((NS_SS_INITIATOR if is_initiator else NS_SS_RESPONDER) + NS_SEND,
                                   handshake_hash)
        self.receive_key = keyed_hash((NS_SS_RESPONDER if is_initiator else NS_SS_INITIATOR) + NS_SEND,
                                      handshake_hash)

    def header_frame(self) -> bytes:
        """The 59-byte header message to write first."""
        return self._header_frame

    def encrypt(self, message: bytes) -> bytes:
        """One application message as one frame."""
        size = len(message)
        if size > MAX_MESSAGE:
            raise ValueError(f"a message is at most {MAX_MESSAGE} bytes")
        if type(message) is not bytes:
            message = bytes(message)
        if _lib is None:
            body = bindings.crypto_secretstream_xchacha20poly1305_push(self._push, message, None, TAG_MESSAGE)
            return len(body).to_bytes(3, "little") + body
        length = size + ABYTES
        out = self._scratch if length <= self._scratch_size else self._scratch_for(length)
        if _lib.crypto_secretstream_xchacha20poly1305_push(self._push.statebuf, out, _ffi.NULL, message, size,
                                                           _ffi.NULL, 0, TAG_MESSAGE) != 0:
            raise RuntimeError("crypto_secretstream_xchacha20poly1305_push failed")
        frame: bytes = length.to_bytes(3, "little") + _ffi.buffer(out, length)[:]
        return frame

    def _scratch_for(self, size: int) -> Any:
        """A cffi buffer of at least ``size`` bytes: the stream's own up to SCRATCH_MAX, else a new one."""
        if size <= self._scratch_size:
            return self._scratch
        if size > SCRATCH_MAX:
            return _ffi.new("unsigned char[]", size)
        self._scratch_size = max(size, 2048)
        self._scratch = _ffi.new("unsigned char[]", self._scratch_size)
        return self._scratch

    def _decrypt(self, body: bytes) -> bytes:
        """One frame's body decrypted; :class:`SecretStreamError` if it fails authentication."""
        assert self._pull is not None
        if _lib is None:
            try:
                pulled: bytes = bindings.crypto_secretstream_xchacha20poly1305_pull(self._pull, body, None)[0]
            except (CryptoError, ValueError, RuntimeError):
                raise SecretStreamError("pull failed: message corrupted or forged") from None
            return pulled
        size = len(body) - ABYTES
        out = self._scratch if size <= self._scratch_size else self._scratch_for(size)
        if _lib.crypto_secretstream_xchacha20poly1305_pull(self._pull.statebuf, out, _ffi.NULL, self._tag,
                                                           body, size + ABYTES, _ffi.NULL, 0) != 0:
            raise SecretStreamError("pull failed: message corrupted or forged")
        message: bytes = _ffi.buffer(out, size)[:] if size else b""
        return message

    def receive(self, data: bytes) -> list[bytes]:
        """Feed stream bytes; returns the complete messages they finish (empty ones dropped)."""
        buf = self._buffer
        if not buf and self._pull is not None and type(data) is bytes and len(data) > 3 + ABYTES \
                and data[0] | (data[1] << 8) | (data[2] << 16) == len(data) - 3:
            # The usual case for messages that fit a packet: exactly one whole frame.
            message = self._decrypt(data[3:])
            return [message] if message else []
        if buf:  # the rest of an unfinished frame is waiting
            buf += data
            if len(buf) < 3 or len(buf) - 3 < (buf[0] | (buf[1] << 8) | (buf[2] << 16)):
                return []  # still unfinished: no copy until it is whole
            src = bytes(buf)
            buf.clear()
        else:
            src = bytes(data)
        out: list[bytes] = []
        pos = 0
        end = len(src)
        while end - pos >= 3:
            length = src[pos] | (src[pos + 1] << 8) | (src[pos + 2] << 16)
            if length == 0:
                raise SecretStreamError("empty frame")
            if end - pos - 3 < length:
                break
            body = src[pos + 3:pos + 3 + length]
            pos += 3 + length
            if self._pull is None:
                self._open(body)
                continue
            if length < ABYTES:
                raise SecretStreamError("invalid message received")
            message = self._decrypt(body)
            if message:
                out.append(message)
        if pos < end:
            buf += src[pos:]
        return out

    def finish(self) -> None:
        """The peer's stream ended: an unfinished frame left behind is an error."""
        if self._buffer:
            raise SecretStreamError(f"stream ended inside a frame ({len(self._buffer)} bytes left)")

    def _open(self, body: bytes) -> None:
        if len(body) != HEADER_BODY:
            raise SecretStreamError("invalid header message received")
        if body[:32] != self._remote_id:
            raise SecretStreamError("invalid header received: wrong stream id")
        state = bindings.crypto_secretstream_xchacha20poly1305_state()
        bindings.crypto_secretstream_xchacha20poly1305_init_pull(state, body[32:], self._rx)
        self._pull = state

    @property
    def opened(self) -> bool:
        """True once the peer's header message was accepted."""
        return self._pull is not None
