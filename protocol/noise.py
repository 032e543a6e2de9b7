"""The Noise handshakes hyperdht and secret-stream use, on the ``noiseprotocol`` package.

hyperdht connects with ``Noise_IK_Ed25519_ChaChaPoly_BLAKE2b`` (prologue
NS_PEER_HANDSHAKE); a stand-alone secret-stream uses the XX pattern with an
empty prologue.  noiseprotocol's handshake state machine runs on our own
backend (:class:`_Backend`): the Ed25519 DH (noise-curve-ed), which
noiseprotocol does not ship, and ChaChaPoly and BLAKE2b on libsodium and
``hashlib``, so that a node never loads ``cryptography``, which noiseprotocol's
default backend and ``NoiseConnection`` import (~9 MB of RSS).  The finished
handshake yields the raw split keys and the 64-byte handshake hash, which
secret-stream is keyed with (see docs/noise.md).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nacl import bindings
from nacl.exceptions import CryptoError
from noise.backends.noise_backend import NoiseBackend
from noise.functions.cipher import Cipher
from noise.functions.dh import DH
from noise.functions.hash import Hash
from noise.functions.keypair import KeyPair as _NoiseKeyPair
from noise.noise_protocol import NoiseProtocol

from hyperswarm_hugin.protocol.hugin import KeyPair, ed25519_dh
from hyperswarm_hugin.protocol.namespaces import (
    NS_PEER_HANDSHAKE,
    NS_PEER_HOLEPUNCH,
    NS_SS_INITIATOR,
    NS_SS_RESPONDER,
    keyed_hash,
)

IK = b"Noise_IK_Ed25519_ChaChaPoly_BLAKE2b"
XX = b"Noise_XX_Ed25519_ChaChaPoly_BLAKE2b"
MAX_MESSAGE = 65535


class HandshakeError(Exception):
    """A handshake message that does not decrypt, or a step out of order."""


class _Ed25519KeyPair(_NoiseKeyPair):  # type: ignore[misc]
    """noiseprotocol's key-pair object: ``private`` is the scalar, ``public`` the point bytes."""

    @classmethod
    def from_private_bytes(cls, private_bytes: bytes) -> _Ed25519KeyPair:
        kp = KeyPair.from_seed(bytes(private_bytes))
        return cls.from_key_pair(kp)

    @classmethod
    def from_public_bytes(cls, public_bytes: bytes) -> _Ed25519KeyPair:
        if len(public_bytes) != 32:
            raise HandshakeError("a public key is 32 bytes")
        data = bytes(public_bytes)
        return cls(public=data, public_bytes=data)

    @classmethod
    def from_key_pair(cls, kp: KeyPair) -> _Ed25519KeyPair:
        return cls(private=kp.scalar, public=kp.public_key, public_bytes=kp.public_key)


class _Ed25519DH(DH):  # type: ignore[misc]
    @property
    def klass(self) -> type[_Ed25519KeyPair]:
        return _Ed25519KeyPair

    @property
    def dhlen(self) -> int:
        return 32

    def generate_keypair(self) -> _Ed25519KeyPair:
        return _Ed25519KeyPair.from_private_bytes(bindings.randombytes(32))

    def dh(self, private_key: bytes, public_key: bytes) -> bytes:
        try:
            return ed25519_dh(private_key, public_key)
        except ValueError as exc:
            raise HandshakeError(str(exc)) from None


class _ChaChaPoly(Cipher):  # type: ignore[misc]
    """libsodium's IETF ChaCha20-Poly1305; the nonce is 4 zero bytes and ``n`` as 8 bytes little-endian."""

    @property
    def klass(self) -> type[bytes]:
        return bytes  # the key is all the state; noiseprotocol passes it to every call

    def encrypt(self, k: bytes, n: int, ad: bytes, plaintext: bytes) -> bytes:
        return bindings.crypto_aead_chacha20poly1305_ietf_encrypt(
            bytes(plaintext), ad, b"\0\0\0\0" + n.to_bytes(8, "little"), k)

    def decrypt(self, k: bytes, n: int, ad: bytes, ciphertext: bytes) -> bytes:
        return bindings.crypto_aead_chacha20poly1305_ietf_decrypt(
            bytes(ciphertext), ad, b"\0\0\0\0" + n.to_bytes(8, "little"), k)


class _BLAKE2b(Hash):  # type: ignore[misc]
    @property
    def fn(self) -> Callable[..., Any]:
        return hashlib.blake2b

    @property
    def hashlen(self) -> int:
        return 64

    @property
    def blocklen(self) -> int:
        return 128

    def hash(self, data: bytes) -> bytes:
        return hashlib.blake2b(data).digest()


def _hmac(key: bytes, data: bytes, algorithm: Callable[..., Any]) -> bytes:
    """HMAC-BLAKE2b (RFC 2104 over BLAKE2b-512), OpenSSL's one-shot rather than hmac's Python loop."""
    return hmac.digest(key, data, "blake2b512")


class _Backend(NoiseBackend):  # type: ignore[misc]
    """noiseprotocol's patterns and HKDF with our DH, cipher, hash and HMAC."""

    def __init__(self) -> None:
        super().__init__()
        self.diffie_hellmans = {"Ed25519": _Ed25519DH}
        self.keypairs = {"Ed25519": _Ed25519KeyPair}
        self.ciphers = {"ChaChaPoly": _ChaChaPoly}
        self.hashes = {"BLAKE2b": _BLAKE2b}
        self.hmac = _hmac


_BACKEND = _Backend()


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


def warm_up() -> None:
    """One IK handshake between throw-away keys: a process's first handshake otherwise pays
    ~0.5 ms on its connect path for loading what this one loads (noiseprotocol's pattern tables,
    OpenSSL's HMAC-BLAKE2b, libsodium's ChaCha20-Poly1305 both ways)."""
    ours = KeyPair.from_seed(bindings.randombytes(32))
    theirs = KeyPair.from_seed(bindings.randombytes(32))
    initiator = NoiseHandshake(ours, initiator=True, remote_public_key=theirs.public_key)
    responder = NoiseHandshake(theirs, initiator=False)
    responder.recv(initiator.send(b""))
    initiator.recv(responder.send(b""))


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
        if pattern == IK and initiator and (remote_public_key is None or len(remote_public_key) != 32):
            raise ValueError("an IK initiator needs the responder's 32-byte public key")
        self.static = static
        self.initiator = initiator
        self.pattern = pattern
        self._proto: Any = NoiseProtocol(pattern, _BACKEND)
        self._proto.prologue = NS_PEER_HANDSHAKE if prologue is None and pattern == IK else prologue
        self._proto.initiator = initiator
        self._proto.keypairs["s"] = _Ed25519KeyPair.from_key_pair(static)
        if remote_public_key is not None:
            self._proto.keypairs["rs"] = _Ed25519KeyPair.from_public_bytes(remote_public_key)
        if ephemeral is not None:
            self._proto.keypairs["e"] = _Ed25519KeyPair.from_key_pair(ephemeral)
        self._proto.initialise_handshake_state()
        self._state = self._proto.handshake_state
        self._our_turn = initiator
        self.remote_public_key = remote_public_key
        self.result: HandshakeResult | None = None
        self.failed = False

    @property
    def complete(self) -> bool:
        return self.result is not None

    def send(self, payload: bytes = b"") -> bytes:
        """The next handshake message, carrying ``payload``."""
        self._take_turn(sending=True)
        if len(payload) + 16 > MAX_MESSAGE:
            raise ValueError("handshake payload too large")
        message = bytearray()
        try:
            split = self._state.write_message(bytes(payload), message)
        except HandshakeError:
            self.failed = True
            raise
        self._after_step(split)
        return bytes(message)

    def recv(self, message: bytes) -> bytes:
        """Process the peer's next message; returns its payload."""
        self._take_turn(sending=False)
        payload = bytearray()
        try:
            split = self._state.read_message(bytes(message), payload)
        except (HandshakeError, CryptoError, ValueError, IndexError) as exc:
            self.failed = True
            raise HandshakeError(f"bad handshake message: {str(exc) or type(exc).__name__}") from None
        self._after_step(split)
        return bytes(payload)

    def _take_turn(self, *, sending: bool) -> None:
        if self.failed:
            raise HandshakeError("the handshake has failed")
        if self.result is not None:
            raise HandshakeError("the handshake is complete")
        if sending != self._our_turn:
            self.failed = True
            raise HandshakeError("a handshake step out of order")
        self._our_turn = not sending

    def _after_step(self, split: object) -> None:
        rs = self._state.rs
        if self.remote_public_key is None and isinstance(rs, _Ed25519KeyPair):
            self.remote_public_key = rs.public_bytes
        if split is None:
            return
        assert self.remote_public_key is not None
        self.result = HandshakeResult(
            is_initiator=self.initiator,
            public_key=self.static.public_key,
            remote_public_key=self.remote_public_key,
            tx=bytes(self._proto.cipher_state_encrypt.k),
            rx=bytes(self._proto.cipher_state_decrypt.k),
            hash=bytes(self._proto.handshake_hash),
        )
