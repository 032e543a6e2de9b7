"""Anyone <-> AuthActor: the group barrier, bans and the user's firewall."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hyperswarm_hugin.actors.messages.base import Message
from hyperswarm_hugin.protocol.encoding import Address
from hyperswarm_hugin.protocol.hugin import GroupKey, KeyPair
from hyperswarm_hugin.protocol.hyperdht.payloads import NoisePayload

# --- anyone -> AuthActor ---------------------------------------------------------------

@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ConfigureAuth(Message):
    """Give the AuthActor the group key, our DHT key pair and the user's firewall.

    ``firewall(remote_public_key, payload)`` returns True to refuse (hyperswarm's
    meaning); refusing there bans the key.  ``group`` None means no Hugin barrier.
    """

    group: GroupKey | None
    key_pair: KeyPair
    firewall: Callable[[bytes, NoisePayload | None], bool] | None = None
    handshake_rate: float = 5.0
    handshake_burst: int = 20


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class AdmitHandshake(Message):
    """May a handshake from ``source`` be processed at all (before any allocation)?

    ``source`` is the datagram's source (the relay's, for a relayed handshake); ``relayed_for``
    the client address a relay named (None when direct): only as honest as that relay."""

    request_id: int
    source: Address
    now: float
    relayed_for: Address | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class CheckPeer(Message):
    """Verify a peer that finished (or is finishing) the Noise handshake."""

    request_id: int
    remote_public_key: bytes
    mid: bytes | None
    source: Address | None
    now: float
    payload: NoisePayload | None = None
    relayed_for: Address | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class SetBan(Message):
    public_key: bytes
    banned: bool


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class AuthStatusRequest(Message):
    request_id: int


# --- AuthActor -> asker ----------------------------------------------------------------

@dataclass(frozen=True, slots=True, eq=False, repr=False)
class AuthReady(Message):
    """Our signed ``mid`` (None without a group)."""

    mid: bytes | None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Verdict(Message):
    """The answer to AdmitHandshake or CheckPeer; ``reason`` names a refusal."""

    request_id: int
    accepted: bool
    reason: str | None = None


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class AuthStatus(Message):
    request_id: int
    counters: dict[str, int]
    banned: int


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class DialCheck(Message):
    """May we dial ``remote_public_key``?  Own key, bans, then the user's firewall (payload None)."""

    request_id: int
    remote_public_key: bytes
