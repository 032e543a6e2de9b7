"""AuthActor in an in-process actor system: the group barrier, firewall, bans and throttling."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from thespian.actors import ActorSystem

from hyperswarm_hugin.actors import auth_actor
from hyperswarm_hugin.actors.auth_actor import AuthActor
from hyperswarm_hugin.actors.messages import (
    AdmitHandshake,
    AuthReady,
    AuthStatus,
    AuthStatusRequest,
    CheckPeer,
    ConfigureAuth,
    SetBan,
    Verdict,
)
from hyperswarm_hugin.actors.runtime import LOG_DEFS
from hyperswarm_hugin.protocol.hugin import GroupKey, KeyPair

GROUP = GroupKey.from_seed(b"our room")
OTHER = GroupKey.from_seed(b"another room")
ME = KeyPair.from_seed(b"\x01" * 32)
PEER = KeyPair.from_seed(b"\x02" * 32)
SOURCE = ("127.0.0.1", 5000)


class Auth:
    def __init__(self, system: Any, **config: Any) -> None:
        self.system = system
        self.addr = system.createActor(AuthActor)
        self.ready = self.ask(ConfigureAuth(GROUP, ME, **config))

    def ask(self, msg: Any) -> Any:
        self.system.tell(self.addr, msg)
        return self.system.listen(0)

    def check(self, key: bytes, mid: bytes | None, now: float = 0.0, source: Any = SOURCE) -> Verdict:
        verdict = self.ask(CheckPeer(1, key, mid, source, now))
        assert isinstance(verdict, Verdict)
        return verdict


@pytest.fixture
def system() -> Iterator[Any]:
    asys = ActorSystem("simpleSystemBase", transientUnique=True, logDefs=LOG_DEFS)
    yield asys
    asys.shutdown()


def test_our_mid_is_the_group_signature_of_our_key(system: Any) -> None:
    auth = Auth(system)
    assert isinstance(auth.ready, AuthReady)
    assert auth.ready.mid == GROUP.sign(ME.public_key)


def test_a_member_is_accepted_and_outsiders_are_refused_with_a_reason(system: Any) -> None:
    auth = Auth(system)
    assert auth.check(PEER.public_key, GROUP.sign(PEER.public_key)).accepted
    assert auth.check(PEER.public_key, OTHER.sign(PEER.public_key)).reason == "bad-mid"
    assert auth.check(PEER.public_key, None).reason == "missing-mid"
    assert auth.check(PEER.public_key, GROUP.sign(PEER.public_key)[:40]).reason == "bad-mid"
    # A mid copied from another member is useless without that member's key.
    assert auth.check(PEER.public_key, GROUP.sign(ME.public_key), source=None).reason == "bad-mid"
    assert auth.check(ME.public_key, GROUP.sign(ME.public_key)).reason == "own-key"
    status = auth.ask(AuthStatusRequest(9))
    assert isinstance(status, AuthStatus)
    assert status.counters["bad-mid"] == 3 and status.counters["missing-mid"] == 1


def test_reconnecting_with_the_same_mid_is_fine(system: Any) -> None:
    auth = Auth(system)
    mid = GROUP.sign(PEER.public_key)
    assert all(auth.check(PEER.public_key, mid, now=i).accepted for i in range(20))


def test_firewall_refusal_bans_the_key(system: Any) -> None:
    seen: list[bytes] = []

    def firewall(key: bytes, payload: object) -> bool:
        seen.append(key)
        return key == PEER.public_key

    auth = Auth(system, firewall=firewall)
    mid = GROUP.sign(PEER.public_key)
    assert auth.check(PEER.public_key, mid).reason == "firewall"
    assert auth.check(PEER.public_key, mid).reason == "banned"
    assert seen == [PEER.public_key]  # a banned key never reaches the firewall again
    auth.ask(SetBan(PEER.public_key, False))
    assert auth.check(PEER.public_key, mid).reason == "firewall"


def test_explicit_ban(system: Any) -> None:
    auth = Auth(system)
    auth.ask(SetBan(PEER.public_key, True))
    assert auth.check(PEER.public_key, GROUP.sign(PEER.public_key)).reason == "banned"


def test_a_source_that_keeps_failing_is_throttled_then_forgiven(system: Any) -> None:
    auth = Auth(system)
    for i in range(3):
        auth.check(PEER.public_key, OTHER.sign(PEER.public_key), now=float(i))
    verdict = auth.ask(AdmitHandshake(2, SOURCE, 3.0))
    assert verdict == Verdict(2, False, "throttled")
    other_source = auth.ask(AdmitHandshake(3, ("127.0.0.1", 5001), 3.0))  # another client, same host
    assert other_source.accepted
    assert auth.ask(AdmitHandshake(4, SOURCE, 64.0)).accepted


def test_handshakes_are_rate_limited_per_source(system: Any) -> None:
    auth = Auth(system, handshake_rate=1.0, handshake_burst=5)
    answers = [auth.ask(AdmitHandshake(i, SOURCE, 10.0)).accepted for i in range(8)]
    assert answers == [True] * 5 + [False] * 3
    assert auth.ask(AdmitHandshake(9, SOURCE, 11.0)).accepted  # one token back after a second
    assert auth.ask(AdmitHandshake(10, ("127.0.0.3", 1), 10.0)).accepted


def test_firewall_bans_are_a_bounded_lru_and_explicit_bans_are_kept(
        system: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth_actor, "MAX_FIREWALL_BANS", 10)
    auth = Auth(system, firewall=lambda key, payload: key != PEER.public_key)
    auth.ask(SetBan(ME.public_key[::-1], True))  # an explicit ban, made before the flood
    keys = [KeyPair.from_seed(bytes([n]) * 32).public_key for n in range(10, 40)]
    for key in keys:
        assert auth.check(key, GROUP.sign(key)).reason == "firewall"
    status = auth.ask(AuthStatusRequest(1))
    assert status.banned == 10 + 1
    assert auth.check(keys[-1], GROUP.sign(keys[-1])).reason == "banned"  # remembered
    assert auth.check(keys[0], GROUP.sign(keys[0])).reason == "firewall"  # forgotten: asked again
    assert auth.check(ME.public_key[::-1], GROUP.sign(ME.public_key[::-1])).reason == "banned"
