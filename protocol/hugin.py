"""Hugin's group identity: seeds, key pairs, the room topic and the ``mid`` signature.

A Hugin member holds the group key (from an invite) and signs its own DHT public
key with it; that 64-byte signature travels as ``mid`` in every Noise handshake
payload.  Signatures here are keypear's, byte for byte (a dom2-style nonce
derived from the secret scalar); they verify as ordinary Ed25519 signatures.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from nacl import bindings
from nacl.exceptions import BadSignatureError, CryptoError

SEED_SIZE = 32
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
MID_CACHE = 64  # mids a GroupKey keeps (see GroupKey.sign)

# keypear's nonce prefix: dom2-style context "crypto_tweak_ed25519", not prehashed.
_KEYPEAR_PREFIX = b"SigEd25519 no Ed25519 collisions" + b"\x00" + bytes([20]) + b"crypto_tweak_ed25519"


def fill32(value: str | bytes | bytearray | list[int]) -> bytes:
    """Node's ``Buffer.alloc(32).fill(value)``: the value's bytes repeated or cut to 32.

    A string contributes its UTF-8 bytes (a hex string is *not* decoded); a byte
    sequence its bytes.  An empty value leaves 32 zero bytes.
    """
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if not data:
        return bytes(SEED_SIZE)
    return (data * (SEED_SIZE // len(data) + 1))[:SEED_SIZE]


def clamp(scalar: bytes) -> bytes:
    """The Ed25519 clamp of a 32-byte scalar."""
    s = bytearray(scalar)
    s[0] &= 248
    s[31] &= 127
    s[31] |= 64
    return bytes(s)


@dataclass(frozen=True)
class KeyPair:
    """An Ed25519 key pair as keypear keeps it: the public key and the secret scalar."""

    public_key: bytes
    scalar: bytes

    def __post_init__(self) -> None:
        if len(self.public_key) != PUBLIC_KEY_SIZE or len(self.scalar) != 32:
            raise ValueError("a key pair is a 32-byte public key and a 32-byte scalar")

    def __repr__(self) -> str:
        return f"KeyPair(public_key={self.public_key.hex()})"

    @classmethod
    def from_seed(cls, seed: bytes) -> KeyPair:
        """``crypto_sign_seed_keypair(seed)`` kept as (public key, clamped SHA-512(seed)[:32])."""
        if len(seed) != SEED_SIZE:
            raise ValueError(f"a seed is 32 bytes, got {len(seed)}")
        public_key, _ = bindings.crypto_sign_seed_keypair(seed)
        return cls(public_key, clamp(hashlib.sha512(seed).digest()[:32]))

    @classmethod
    def random(cls) -> KeyPair:
        return cls.from_seed(bindings.randombytes(SEED_SIZE))

    def sign(self, message: bytes) -> bytes:
        """keypear's signature of ``message`` (see module docstring)."""
        return keypear_sign(self.scalar, self.public_key, message)

    def dh(self, remote_public_key: bytes) -> bytes:
        """Ed25519-point DH (noise-curve-ed); raises ValueError for a rejected point."""
        return ed25519_dh(self.scalar, remote_public_key)


def keypear_sign(scalar: bytes, public_key: bytes, message: bytes) -> bytes:
    """Sign like keypear's ``extension_tweak_ed25519_sign_detached``."""
    reduce = bindings.crypto_core_ed25519_scalar_reduce
    r = reduce(hashlib.sha512(_KEYPEAR_PREFIX + scalar + message).digest())
    big_r = bindings.crypto_scalarmult_ed25519_base_noclamp(r)
    k = reduce(hashlib.sha512(big_r + public_key + message).digest())
    s = bindings.crypto_core_ed25519_scalar_add(r, bindings.crypto_core_ed25519_scalar_mul(k, scalar))
    return bytes(big_r + s)


def verify(public_key: bytes, message: bytes, signature: bytes | None) -> bool:
    """Plain Ed25519 verification; False for a missing, short or wrong signature."""
    if signature is None or len(signature) != SIGNATURE_SIZE or len(public_key) != PUBLIC_KEY_SIZE:
        return False
    try:
        bindings.crypto_sign_open(signature + message, public_key)
    except (BadSignatureError, CryptoError, ValueError):
        return False
    return True


def ed25519_dh(scalar: bytes, remote_public_key: bytes) -> bytes:
    """``crypto_scalarmult_ed25519_noclamp``; ValueError for invalid or small-order points."""
    if len(remote_public_key) != PUBLIC_KEY_SIZE:
        raise ValueError("a public key is 32 bytes")
    try:
        return bytes(bindings.crypto_scalarmult_ed25519_noclamp(scalar, remote_public_key))
    except (CryptoError, RuntimeError) as exc:
        raise ValueError(f"rejected Ed25519 point: {exc}") from None


def is_public_key(value: bytes) -> bool:
    """True when ``value`` is an Ed25519 public key :func:`ed25519_dh` accepts: 32 bytes encoding a
    canonical point of the prime-order subgroup, not of small order."""
    return len(value) == PUBLIC_KEY_SIZE and bool(bindings.crypto_core_ed25519_is_valid_point(value))


def parse_invite(invite: str | bytes) -> bytes | str:
    """An invite as the desktop app reads it: comma-separated byte values, or the text itself."""
    if isinstance(invite, bytes | bytearray):
        return bytes(invite)
    parts = invite.split(",")
    if len(parts) > 1 and all(p.strip().isdigit() and int(p) < 256 for p in parts):
        return bytes(int(p) for p in parts)
    return invite


@dataclass(frozen=True)
class GroupKey:
    """A Hugin group ("room") key: signs members' DHT keys, verifies their ``mid``."""

    key_pair: KeyPair
    # mids already made: keypear's signature is deterministic, and a connect signs our own key
    _mids: dict[bytes, bytes] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __repr__(self) -> str:
        return f"GroupKey(public_key={self.public_key.hex()})"

    @classmethod
    def from_seed(cls, seed: str | bytes | bytearray | list[int]) -> GroupKey:
        """The group key of a seed filled to 32 bytes as the apps fill it (:func:`fill32`).

        An empty seed raises ValueError: filled, it is the all-zero secret anyone could join with.
        """
        if not isinstance(seed, str | bytes | bytearray | list):
            raise TypeError(f"seed must be str, bytes or a list of byte values, got {type(seed).__name__}")
        if not seed:
            raise ValueError("seed must not be empty (it would give the all-zero group secret anyone could join)")
        return cls(KeyPair.from_seed(fill32(seed)))

    @classmethod
    def from_invite(cls, invite: str | bytes) -> GroupKey:
        """The group key of a Hugin invite (the desktop derivation); an empty invite raises ValueError."""
        if not isinstance(invite, str | bytes | bytearray):
            raise TypeError(f"invite must be str or bytes, got {type(invite).__name__}")
        if not invite:
            raise ValueError("invite must not be empty (it would give the all-zero group secret anyone could join)")
        return cls.from_seed(parse_invite(invite))

    @property
    def public_key(self) -> bytes:
        return self.key_pair.public_key

    @property
    def topic(self) -> bytes:
        """The room topic the apps join: the hex text of the public key, filled to 32 bytes."""
        return fill32(self.public_key.hex())

    def sign(self, dht_public_key: bytes) -> bytes:
        """The ``mid`` for a member whose DHT public key is ``dht_public_key``."""
        if len(dht_public_key) != PUBLIC_KEY_SIZE:
            raise ValueError("a DHT public key is 32 bytes")
        key = bytes(dht_public_key)
        mid = self._mids.get(key)
        if mid is None:
            if len(self._mids) >= MID_CACHE:
                self._mids.clear()
            mid = self._mids[key] = self.key_pair.sign(key)
        return mid

    def verify(self, dht_public_key: bytes, mid: bytes | None) -> bool:
        """True when ``mid`` is this group's signature over ``dht_public_key``.  A mid equal to
        the one :meth:`sign` made for that key is (it is our own valid signature): no signature
        check then.  Any other mid is checked, so a peer whose app signs another valid way (an
        RFC 8032 signature) is let in all the same."""
        if mid is not None and self._mids.get(bytes(dht_public_key)) == mid:
            return True
        return verify(self.public_key, dht_public_key, mid)
