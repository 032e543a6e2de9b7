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

import warnings
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from nacl import bindings
from noise.backends.default import DefaultNoiseBackend
from noise.connection import NoiseConnection
from noise.exceptions import NoiseHandshakeError, NoiseInvalidMessage, NoiseValueError
from noise.functions.dh import DH
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


class _Ed25519Backend(DefaultNoiseBackend):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.diffie_hellmans["Ed25519"] = _Ed25519DH
        self.keypairs["Ed25519"] = _Ed25519KeyPair


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
                ValueError, IndexError, InvalidTag) as exc:
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
