"""The Noise handshakes hyperdht and secret-stream use, on libsodium (PyNaCl's bindings).

hyperdht connects with ``Noise_IK_Ed25519_ChaChaPoly_BLAKE2b`` (prologue
NS_PEER_HANDSHAKE); a stand-alone secret-stream uses the XX pattern with an
empty prologue.  The DH is Ed25519 point multiplication (noise-curve-ed); the
cipher is ChaCha20-Poly1305 (IETF, nonce = 4 zero bytes ‖ uint64-LE counter),
the hash BLAKE2b-512 with HMAC and HKDF as in the Noise specification (rev 34).
The finished handshake yields the raw split keys and the 64-byte handshake hash,
which secret-stream is keyed with (see docs/noise.md).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from nacl import bindings
from nacl.exceptions import CryptoError

from protocol.hugin import KeyPair, ed25519_dh
from protocol.namespaces import (
    NS_PEER_HANDSHAKE,
    NS_PEER_HOLEPUNCH,
    NS_SS_INITIATOR,
    NS_SS_RESPONDER,
    keyed_hash,
)

IK = b"Noise_IK_Ed25519_ChaChaPoly_BLAKE2b"
XX = b"Noise_XX_Ed25519_ChaChaPoly_BLAKE2b"
MAX_MESSAGE = 65535
DHLEN = 32
TAGLEN = 16
HASHLEN = 64

# The message patterns: one tuple of tokens per message, the initiator's first.
_PATTERNS: dict[bytes, tuple[tuple[str, ...], ...]] = {
    IK: (("e", "es", "s", "ss"), ("e", "ee", "se")),
    XX: (("e",), ("e", "ee", "s", "es"), ("s", "se")),
}


class HandshakeError(Exception):
    """A handshake message that does not decrypt, or a step out of order."""


def _hash(data: bytes) -> bytes:
    return hashlib.blake2b(data).digest()


def _hkdf(chaining_key: bytes, ikm: bytes) -> tuple[bytes, bytes]:
    """Noise's HKDF with two outputs (HMAC-BLAKE2b)."""
    temp = hmac.digest(chaining_key, ikm, hashlib.blake2b)
    first = hmac.digest(temp, b"\x01", hashlib.blake2b)
    return first, hmac.digest(temp, first + b"\x02", hashlib.blake2b)


def _nonce(n: int) -> bytes:
    return b"\x00\x00\x00\x00" + n.to_bytes(8, "little")


class _SymmetricState:
    """Noise's SymmetricState and its CipherState."""

    def __init__(self, protocol_name: bytes) -> None:
        self.h = protocol_name.ljust(HASHLEN, b"\x00") if len(protocol_name) <= HASHLEN else _hash(protocol_name)
        self.ck = self.h
        self.k: bytes | None = None
        self.n = 0

    def mix_hash(self, data: bytes) -> None:
        self.h = _hash(self.h + data)

    def mix_key(self, ikm: bytes) -> None:
        self.ck, temp = _hkdf(self.ck, ikm)
        self.k = temp[:32]
        self.n = 0

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        if self.k is None:
            ciphertext = plaintext
        else:
            ciphertext = bindings.crypto_aead_chacha20poly1305_ietf_encrypt(plaintext, self.h, _nonce(self.n), self.k)
            self.n += 1
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        if self.k is None:
            plaintext = ciphertext
        else:
            try:
                plaintext = bindings.crypto_aead_chacha20poly1305_ietf_decrypt(ciphertext, self.h, _nonce(self.n),
                                                                              self.k)
            except (CryptoError, ValueError, TypeError):
                raise HandshakeError("bad handshake message: it does not decrypt") from None
            self.n += 1
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[bytes, bytes]:
        first, second = _hkdf(self.ck, b"")
        return first[:32], second[:32]


def _dh(scalar: bytes, public_key: bytes) -> bytes:
    try:
        return ed25519_dh(scalar, public_key)
    except ValueError as exc:
        raise HandshakeError(f"bad handshake message: {exc}") from None


@dataclass(frozen=True)
class HandshakeResult:
    """What a finished handshake hands to secret-stream."""

    is_initiator: bool
    public_key: bytes
    remote_public_key: bytes
    tx: bytes
    rx: bytes
    hash: bytes

    @property
    def holepunch_secret(self) -> bytes:
        """The key of hyperdht's holepunch payloads."""
        return keyed_hash(NS_PEER_HOLEPUNCH, self.hash)

    def stream_id(self, initiator: bool) -> bytes:
        """secret-stream's id for the initiator's (or the responder's) side."""
        return keyed_hash(NS_SS_INITIATOR if initiator else NS_SS_RESPONDER, self.hash)


class NoiseHandshake:
    """One side of an IK (``remote_public_key`` given to the initiator) or XX handshake.

    Call :meth:`send` and :meth:`recv` in the pattern's order; after the last
    message :attr:`result` holds the keys.  Any failure raises
    :class:`HandshakeError` and the handshake is dead.
    """

    def __init__(
        self,
        static: KeyPair,
        *,
        initiator: bool,
        pattern: bytes = IK,
        remote_public_key: bytes | None = None,
        prologue: bytes | None = None,
        ephemeral: KeyPair | None = None,
    ) -> None:
        if pattern not in _PATTERNS:
            raise ValueError(f"unknown handshake pattern {pattern!r}")
        if pattern == IK and initiator and (remote_public_key is None or len(remote_public_key) != 32):
            raise ValueError("an IK initiator needs the responder's 32-byte public key")
        if remote_public_key is not None and len(remote_public_key) != 32:
            raise HandshakeError("a public key is 32 bytes")
        self.static = static
        self.initiator = initiator
        self.pattern = pattern
        self._messages = _PATTERNS[pattern]
        self._step = 0
        self._state = _SymmetricState(pattern)
        if prologue is None and pattern == IK:
            prologue = NS_PEER_HANDSHAKE
        self._state.mix_hash(prologue or b"")
        self._ephemeral = ephemeral
        self._remote_ephemeral: bytes | None = None
        if pattern == IK:  # the pre-message "<- s"
            responder_static = remote_public_key if initiator else static.public_key
            assert responder_static is not None
            self._state.mix_hash(responder_static)
        self.remote_public_key = remote_public_key
        self.result: HandshakeResult | None = None
        self.failed = False

    @property
    def complete(self) -> bool:
        return self.result is not None

    def _my_turn(self) -> bool:
        return (self._step % 2 == 0) == self.initiator

    def send(self, payload: bytes = b"") -> bytes:
        """The next handshake message, carrying ``payload``."""
        self._check_alive()
        if len(payload) + TAGLEN > MAX_MESSAGE:
            raise ValueError("handshake payload too large")
        if not self._my_turn():
            self.failed = True
            raise HandshakeError("not our turn to send a handshake message")
        state = self._state
        out = bytearray()
        try:
            for token in self._messages[self._step]:
                if token == "e":
                    if self._ephemeral is None:
                        self._ephemeral = KeyPair.from_seed(bindings.randombytes(32))
                    out += self._ephemeral.public_key
                    state.mix_hash(self._ephemeral.public_key)
                elif token == "s":
                    out += state.encrypt_and_hash(self.static.public_key)
                else:
                    state.mix_key(self._token_dh(token))
            out += state.encrypt_and_hash(bytes(payload))
        except HandshakeError:
            self.failed = True
            raise
        self._advance()
        return bytes(out)

    def recv(self, message: bytes) -> bytes:
        """Process the peer's next message; returns its payload."""
        self._check_alive()
        if self._my_turn():
            self.failed = True
            raise HandshakeError("bad handshake message: not the peer's turn")
        data = bytes(message)
        state = self._state
        try:
            if len(data) > MAX_MESSAGE:
                raise HandshakeError("bad handshake message: too long")
            pos = 0
            for token in self._messages[self._step]:
                if token == "e":
                    if len(data) - pos < DHLEN:
                        raise HandshakeError("bad handshake message: too short")
                    self._remote_ephemeral = data[pos:pos + DHLEN]
                    pos += DHLEN
                    state.mix_hash(self._remote_ephemeral)
                elif token == "s":
                    size = DHLEN + (TAGLEN if state.k is not None else 0)
                    if len(data) - pos < size:
                        raise HandshakeError("bad handshake message: too short")
                    self.remote_public_key = state.decrypt_and_hash(data[pos:pos + size])
                    pos += size
                else:
                    state.mix_key(self._token_dh(token))
            if state.k is not None and len(data) - pos < TAGLEN:
                raise HandshakeError("bad handshake message: too short")
            payload = state.decrypt_and_hash(data[pos:])
        except HandshakeError:
            self.failed = True
            raise
        self._advance()
        return payload

    def _token_dh(self, token: str) -> bytes:
        """The DH of ``ee``, ``es``, ``se`` or ``ss`` from our side."""
        ours, theirs = token[0], token[1]
        if not self.initiator:  # the letters name the initiator's key first
            ours, theirs = theirs, ours
        local = self._ephemeral if ours == "e" else self.static
        remote = self._remote_ephemeral if theirs == "e" else self.remote_public_key
        if local is None or remote is None:
            raise HandshakeError("bad handshake message: a key is missing")
        return _dh(local.scalar, remote)

    def _advance(self) -> None:
        self._step += 1
        if self._step < len(self._messages):
            return
        assert self.remote_public_key is not None
        first, second = self._state.split()
        self.result = HandshakeResult(
            is_initiator=self.initiator,
            public_key=self.static.public_key,
            remote_public_key=self.remote_public_key,
            tx=first if self.initiator else second,
            rx=second if self.initiator else first,
            hash=self._state.h,
        )

    def _check_alive(self) -> None:
        if self.failed:
            raise HandshakeError("the handshake has failed")
        if self.result is not None:
            raise HandshakeError("the handshake is complete")
