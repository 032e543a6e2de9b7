"""The Noise handshakes hyperdht and secret-stream use, on the ``noiseprotocol`` package.

hyperdht connects with ``Noise_IK_Ed25519_ChaChaPoly_BLAKE2b`` (prologue
NS_PEER_HANDSHAKE); a stand-alone secret-stream uses the XX pattern with an
empty prologue.  The DH is Ed25519 point multiplication (noise-curve-ed), which
noiseprotocol does not ship: :class:`_Ed25519Backend` registers it under the
name token ``Ed25519``.  The finished handshake yields the raw split keys and
the 64-byte handshake hash, which secret-stream is keyed with; noiseprotocol
only exposes them through its internal cipher states (see docs/noise.md).
"""

from __future__ import annotations

import hashlib
import hmac
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from nacl import bindings
from nacl.exceptions import CryptoError
from noise.backends.default import DefaultNoiseBackend
from noise.connection import NoiseConnection
from noise.exceptions import NoiseHandshakeError, NoiseInvalidMessage, NoiseValueError
from noise.functions.cipher import Cipher
from noise.functions.dh import DH
from noise.functions.hash import Hash
from noise.functions.keypair import KeyPair as _NoiseKeyPair

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


class _Blake2b(Hash):  # type: ignore[misc]
    """BLAKE2b-512 from hashlib: noiseprotocol's own goes through ``cryptography``, whose first
    hash object of a process costs ~0.5 ms and every later one a few µs more."""

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


def _hmac(key: bytes, data: bytes, algorithm: Any) -> bytes:
    """HMAC-BLAKE2b (RFC 2104 over BLAKE2b-512, block 128 bytes), OpenSSL's one-shot."""
    return hmac.digest(key, data, "blake2b512")


class _ChaChaPoly(Cipher):  # type: ignore[misc]
    """ChaCha20-Poly1305 (IETF, 96-bit nonce: four zero bytes, then n little-endian) from
    libsodium, which PyNaCl has loaded anyway; a bad tag raises CryptoError."""

    @property
    def klass(self) -> Callable[[bytes], bytes]:
        return bytes

    def encrypt(self, k: bytes, n: int, ad: bytes, plaintext: bytes) -> bytes:
        nonce = b"\x00\x00\x00\x00" + n.to_bytes(8, "little")
        return bytes(bindings.crypto_aead_chacha20poly1305_ietf_encrypt(bytes(plaintext), ad, nonce, self.cipher))

    def decrypt(self, k: bytes, n: int, ad: bytes, ciphertext: bytes) -> bytes:
        nonce = b"\x00\x00\x00\x00" + n.to_bytes(8, "little")
        return bytes(bindings.crypto_aead_chacha20poly1305_ietf_decrypt(bytes(ciphertext), ad, nonce, self.cipher))


class _Ed25519Backend(DefaultNoiseBackend):  # type: ignore[misc]
    """noiseprotocol's default backend with the Ed25519 DH, and BLAKE2b, its HMAC and ChaChaPoly
    taken from hashlib / libsodium instead of ``cryptography`` (the same functions, cheaper
    calls: see docs/performance.md, "Join → first connection")."""

    def __init__(self) -> None:
        super().__init__()
        self.diffie_hellmans["Ed25519"] = _Ed25519DH
        self.keypairs["Ed25519"] = _Ed25519KeyPair
        self.hashes["BLAKE2b"] = _Blake2b
        self.ciphers["ChaChaPoly"] = _ChaChaPoly
        self.hmac = _hmac


_BACKEND = _Ed25519Backend()


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
        self._conn: Any = NoiseConnection.from_name(pattern, backend=_BACKEND)
        proto = self._conn.noise_protocol
        if prologue is None and pattern == IK:
            prologue = NS_PEER_HANDSHAKE
        if prologue:
            self._conn.set_prologue(prologue)
        if initiator:
            self._conn.set_as_initiator()
        else:
            self._conn.set_as_responder()
        proto.keypairs["s"] = _Ed25519KeyPair.from_key_pair(static)
        if remote_public_key is not None:
            proto.keypairs["rs"] = _Ed25519KeyPair.from_public_bytes(remote_public_key)
        if ephemeral is not None:
            proto.keypairs["e"] = _Ed25519KeyPair.from_key_pair(ephemeral)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # noiseprotocol warns about a preset ephemeral key
            self._conn.start_handshake()
        self._state = self._conn.noise_protocol.handshake_state
        self.remote_public_key = remote_public_key
        self.result: HandshakeResult | None = None
        self.failed = False

    @property
    def complete(self) -> bool:
        return self.result is not None

    def send(self, payload: bytes = b"") -> bytes:
        """The next handshake message, carrying ``payload``."""
        self._check_alive()
        if len(payload) + 16 > MAX_MESSAGE:
            raise ValueError("handshake payload too large")
        try:
            message = bytes(self._conn.write_message(payload))
        except (NoiseHandshakeError, NoiseValueError) as exc:
            self.failed = True
            raise HandshakeError(str(exc)) from None
        self._after_step()
        return message

    def recv(self, message: bytes) -> bytes:
        """Process the peer's next message; returns its payload."""
        self._check_alive()
        try:
            payload = bytes(self._conn.read_message(bytes(message)))
        except (NoiseHandshakeError, NoiseInvalidMessage, NoiseValueError, HandshakeError,
                ValueError, IndexError, InvalidTag, CryptoError) as exc:
            self.failed = True
            raise HandshakeError(f"bad handshake message: {str(exc) or type(exc).__name__}") from None
        self._after_step()
        return payload

    def _check_alive(self) -> None:
        if self.failed:
            raise HandshakeError("the handshake has failed")
        if self.result is not None:
            raise HandshakeError("the handshake is complete")

    def _after_step(self) -> None:
        rs = self._state.rs
        if self.remote_public_key is None and rs is not None and hasattr(rs, "public_bytes"):
            self.remote_public_key = bytes(rs.public_bytes)
        if not self._conn.handshake_finished:
            return
        proto = self._conn.noise_protocol
        assert self.remote_public_key is not None
        self.result = HandshakeResult(
            is_initiator=self.initiator,
            public_key=self.static.public_key,
            remote_public_key=self.remote_public_key,
            tx=bytes(proto.cipher_state_encrypt.k),
            rx=bytes(proto.cipher_state_decrypt.k),
            hash=bytes(self._conn.get_handshake_hash()),
        )
