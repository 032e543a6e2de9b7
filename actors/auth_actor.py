"""AuthActor: the group barrier and the firewall, decided before anything is allocated."""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import Any

from thespian.actors import Actor, ActorAddress

from hyperswarm_hugin.actors.messages import (
    AdmitHandshake,
    AuthReady,
    AuthStatus,
    AuthStatusRequest,
    CheckPeer,
    ConfigureAuth,
    DialCheck,
    SetBan,
    Verdict,
)
from hyperswarm_hugin.protocol.admission import RELAY_RATE_FACTOR, AdmissionLimits, HandshakeAdmission
from hyperswarm_hugin.protocol.hugin import GroupKey, KeyPair

log = logging.getLogger(__name__)

OWN_KEY = "own-key"
BANNED = "banned"
RATE_LIMITED = "rate-limited"
THROTTLED = "throttled"
MISSING_MID = "missing-mid"
BAD_MID = "bad-mid"
FIREWALL = "firewall"
MAX_FIREWALL_BANS = 4096
"""Keys the user's firewall refused that are remembered (least recently refused forgotten first;
the firewall is asked again about a forgotten one).  Explicit bans are kept until lifted."""


class AuthActor(Actor):  # type: ignore[misc]
    """Signs our ``mid``; checks remote ones against the key the handshake proved.

    Refusals are counted by reason.  Handshakes are rate limited and clients that keep
    failing the group check are throttled for a while, keyed on the datagram's source as the
    socket saw it (see :class:`~hyperswarm_hugin.protocol.admission.HandshakeAdmission`); keys refused by the
    user's firewall are banned.
    Nothing a stranger sends grows without bound: explicit bans are the user's, firewall bans
    are an LRU of :data:`MAX_FIREWALL_BANS` keys, and the per-source tables forget their oldest
    entries.
    """

    def __init__(self) -> None:
        super().__init__()
        self.group: GroupKey | None = None
        self.key_pair: KeyPair | None = None
        self.firewall: Callable[[bytes, Any], bool] | None = None
        self.admission = HandshakeAdmission()
        self.banned: set[bytes] = set()  # explicit bans (SetBan): kept until lifted
        self.firewall_banned: OrderedDict[bytes, None] = OrderedDict()  # least recent first
        self.counters: Counter[str] = Counter()

    def receiveMessage(self, msg: Any, sender: ActorAddress) -> None:
        if isinstance(msg, CheckPeer):
            self.send(sender, self._check(msg))
        elif isinstance(msg, AdmitHandshake):
            self.send(sender, self._admit(msg))
        elif isinstance(msg, DialCheck):
            self.send(sender, self._dial_check(msg))
        elif isinstance(msg, SetBan):
            self.firewall_banned.pop(msg.public_key, None)
            if msg.banned:
                self.banned.add(msg.public_key)
            else:
                self.banned.discard(msg.public_key)
        elif isinstance(msg, ConfigureAuth):
            self._configure(msg)
            mid = self.group.sign(self.key_pair.public_key) if self.group and self.key_pair else None
            self.send(sender, AuthReady(mid))
        elif isinstance(msg, AuthStatusRequest):
            self.send(sender, AuthStatus(msg.request_id, dict(self.counters),
                                        len(self.banned) + len(self.firewall_banned)))

    def _configure(self, msg: ConfigureAuth) -> None:
        if msg.group is not None and not isinstance(msg.group, GroupKey):
            raise TypeError("group must be a GroupKey")
        self.group = msg.group
        self.key_pair = msg.key_pair
        self.firewall = msg.firewall
        rate, burst = msg.handshake_rate, msg.handshake_burst
        self.admission = HandshakeAdmission(AdmissionLimits(
            rate=rate, burst=burst, relay_rate=rate * RELAY_RATE_FACTOR, relay_burst=burst * RELAY_RATE_FACTOR))

    def _is_banned(self, key: bytes) -> bool:
        if key in self.firewall_banned:
            self.firewall_banned.move_to_end(key)
            return True
        return key in self.banned

    def _firewall_ban(self, key: bytes) -> None:
        self.firewall_banned[key] = None
        if len(self.firewall_banned) > MAX_FIREWALL_BANS:
            self.firewall_banned.popitem(last=False)

    def _refuse(self, request_id: int, reason: str) -> Verdict:
        self.counters[reason] += 1
        return Verdict(request_id, False, reason)

    def _admit(self, msg: AdmitHandshake) -> Verdict:
        reason = self.admission.admit(msg.source, msg.relayed_for, msg.now)
        if reason is not None:
            return self._refuse(msg.request_id, reason)
        return Verdict(msg.request_id, True)

    def _dial_check(self, msg: DialCheck) -> Verdict:
        key = msg.remote_public_key
        if self.key_pair is not None and key == self.key_pair.public_key:
            return self._refuse(msg.request_id, OWN_KEY)
        if self._is_banned(key):
            return self._refuse(msg.request_id, BANNED)
        if self.firewall is not None and self.firewall(key, None):
            self._firewall_ban(key)
            return self._refuse(msg.request_id, FIREWALL)
        return Verdict(msg.request_id, True)

    def _check(self, msg: CheckPeer) -> Verdict:
        key = msg.remote_public_key
        if self.key_pair is not None and key == self.key_pair.public_key:
            return self._refuse(msg.request_id, OWN_KEY)
        if self._is_banned(key):
            return self._refuse(msg.request_id, BANNED)
        if self.group is not None:
            reason = MISSING_MID if msg.mid is None else BAD_MID
            if msg.mid is None or not self.group.verify(key, msg.mid):
                if msg.source is not None and self.admission.failed(msg.source, msg.relayed_for, msg.now):
                    log.info("throttling %s (relayed for %s) after repeated group-check failures",
                             msg.source, msg.relayed_for)
                return self._refuse(msg.request_id, reason)
        if self.firewall is not None and self.firewall(key, msg.payload):
            self._firewall_ban(key)
            return self._refuse(msg.request_id, FIREWALL)
        self.counters["accepted"] += 1
        return Verdict(msg.request_id, True)
