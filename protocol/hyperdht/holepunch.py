"""Holepunching policy as pure functions and constants (hyperdht's lib/holepuncher.js and the
address choices of lib/connect.js / lib/server.js; holepunch.md §2-3).

The I/O side (sockets, probes, timers) lives in hyperswarm_hugin/holepuncher.py; everything
here is decided from its arguments alone and unit-tested with hyperdht's own cases.
"""

from __future__ import annotations

import hashlib
import ipaddress
import random
from enum import Enum

from hyperswarm_hugin.protocol.encoding import Address
from hyperswarm_hugin.protocol.errors import DecodeError
from hyperswarm_hugin.protocol.hyperdht.constants import Firewall, PayloadError, coerce_firewall
from hyperswarm_hugin.protocol.hyperdht.payloads import HolepunchPayload, RelayInfo, open_holepunch, seal_holepunch

HOLEPUNCH_TTL = 5           # a probe that opens our NAT mapping but dies before the far router
DEFAULT_TTL = 64
BIRTHDAY_SOCKETS = 256
RANDOM_PROBES = 1750        # ~35 s at one probe every 20 ms
PROBE_INTERVAL = 0.02
CONSISTENT_TICKS = 10
CONSISTENT_INTERVAL = 1.0
SERVER_FIRST_PROBE_DELAY = 1.0   # the server's fast-mode ping already went out
BIRTHDAY_PAUSE = 0.1
PUNCH_TIMEOUT = 10.0        # a server's puncher with no punching round nor relay (HANDSHAKE_INITIAL_TIMEOUT)
PASSIVE_CONNECT_TIMEOUT = 10.0
REMOTE_UNKNOWN_WAIT = 1.0
TRY_LATER_MIN = 10.0        # connect.js tryLater: a relayed client punches again 10-20 s later
TRY_LATER_SPREAD = 10.0
RANDOM_PUNCH_INTERVAL = 20.0
RANDOM_PUNCH_LIMIT = 1
MAX_REOPENS = 3


class Strategy(Enum):
    """How to punch, given both NAT classes (holepuncher.js ``_punch``)."""

    CONSISTENT = "consistent"   # both keep their ports: probe each other's addresses
    RANDOM_PORTS = "random-ports"  # we are consistent, they are random: probe random ports of their host
    BIRTHDAY = "birthday"        # we are random, they are consistent: many sockets towards their address


def punch_strategy(local: int, remote: int, remote_verified: bool) -> Strategy | None:
    """The strategy for this pair of firewall classes, or None when punching cannot work
    (both random, something unknown, or a random pair without a verified remote host)."""
    ours, theirs = coerce_firewall(local), coerce_firewall(remote)
    if ours is Firewall.CONSISTENT and theirs is Firewall.CONSISTENT:
        return Strategy.CONSISTENT
    if not remote_verified:
        return None
    if ours is Firewall.CONSISTENT and theirs is Firewall.RANDOM:
        return Strategy.RANDOM_PORTS
    if ours is Firewall.RANDOM and theirs is Firewall.CONSISTENT:
        return Strategy.BIRTHDAY
    return None


def unstable(local: int, remote: int) -> bool:
    """Our NAT view cannot lead to a punch: unknown, or random on both sides."""
    return (remote >= Firewall.RANDOM and local >= Firewall.RANDOM) or local == Firewall.UNKNOWN


def is_random_pair(local: int, remote: int) -> bool:
    """A punch that counts against the random-punch limit."""
    return local >= Firewall.RANDOM or remote >= Firewall.RANDOM


class RoundStep(Enum):
    """What a client does before its punching round (connect.js ``roundPunch``)."""

    PUNCH = "punch"   # go ahead
    WAIT = "wait"     # a relay carries (or will carry) the stream: wait try_later_delay(), ask again
    ABORT = "abort"   # nothing can help: HOLEPUNCH_ABORTED


def punch_round_step(randomized: bool, budget_allows: bool, relayed: bool) -> RoundStep:
    """A randomized punch past this node's random-punch budget waits when a relay is in play
    (the connection can go direct later) and is given up otherwise."""
    if not randomized or budget_allows:
        return RoundStep.PUNCH
    return RoundStep.WAIT if relayed else RoundStep.ABORT


def waits_after(error: int, relayed: bool, punching: bool) -> bool:
    """A server's answer to a round that means "wait and punch again" rather than an abort: its
    TRY_LATER to a punching round, with a relay in play (connect.js ``updateHolepunch``)."""
    return error == PayloadError.TRY_LATER and relayed and punching


def try_later_delay(rng: random.Random) -> float:
    """Seconds to wait before punching again (connect.js ``tryLater``): 10 s plus up to 10 s
    more, in whole milliseconds."""
    return TRY_LATER_MIN + round(rng.random() * TRY_LATER_SPREAD * 1000) / 1000


def random_port(rng: random.Random) -> int:
    """A port in [1000, 65536) as holepuncher.js ``randomPort``."""
    return int(1000 + rng.random() * 64536)


def next_probe_at(due: float, now: float, interval: float) -> float:
    """When the probe after the one that was due at ``due`` leaves, the clock reading ``now``:
    ``interval`` after ``due``, on a fixed schedule, so a loop that woke late waits less for the
    next probe instead of pushing every later one back (holepuncher.js sleeps 20 ms after each
    send; a busy Python loop would stretch that).  Behind by more than one interval (a stall),
    the schedule starts again from ``now``: no burst of catch-up probes."""
    following = due + interval
    return now + interval if now - following > interval else following


def probe_this_tick(verified: bool, tick: int) -> bool:
    """Consistent probing: verified addresses every tick, the others on ticks 4 and 8."""
    return verified or (tick & 3) == 0


def match_address(local_hosts: list[str], remote: list[Address]) -> Address | None:
    """The remote address that shares the longest /8, /16 or /24 prefix with one of ours
    (holepuncher.js ``matchAddress``): a full /24 match wins at once; None if nothing shares /8."""
    if not remote:
        return None
    best_segments, best = 1, None
    for local in local_hosts:
        a = local.split(".")
        for address in remote:
            b = address[0].split(".")
            if a[0] != b[0]:
                continue
            if best_segments == 1:
                best_segments, best = 2, address
            if a[1] != b[1]:
                continue
            if best_segments == 2:
                best_segments, best = 3, address
            if a[2] == b[2]:
                return address
    return best


def pick_server_relay(relays: list[RelayInfo], client_relay: Address) -> RelayInfo:
    """The server relay that carried our handshake if it is one of the server's, else its first."""
    for relay in relays:
        if relay.relay_address == client_relay:
            return relay
    return relays[0]


def _octets(host: str) -> tuple[int, int, int, int] | None:
    try:
        packed = ipaddress.IPv4Address(host).packed
    except ValueError:
        return None
    return packed[0], packed[1], packed[2], packed[3]


def is_private(host: str) -> bool:
    """The ``bogon`` package's isPrivate: 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12, 192.168/16."""
    o = _octets(host)
    if o is None:
        return False
    a, b = o[0], o[1]
    return (a == 10 or (a == 100 and 64 <= b <= 127) or a == 127 or (a == 169 and b == 254)
            or (a == 172 and 16 <= b <= 31) or (a == 192 and b == 168))


def is_reserved(host: str) -> bool:
    """The ``bogon`` package's isReserved for IPv4 (0/8, 192.0.0/24, the TEST-NETs, 198.18/15,
    multicast and above, broadcast)."""
    o = _octets(host)
    if o is None:
        return False
    a, b, c = o[0], o[1], o[2]
    return (a == 0 or (a == 192 and b == 0 and c in (0, 2)) or (a == 198 and 18 <= b <= 19)
            or (a == 198 and b == 51 and c == 100) or (a == 203 and b == 0 and c == 113) or a >= 224)


def is_bogon(host: str) -> bool:
    """Private or reserved: never where Node's connect sends a stream."""
    return is_private(host) or is_reserved(host)


def first_public_address(addresses: list[Address], fallback: Address) -> Address:
    """connect.js ``getFirstRemoteAddress``: the first non-bogon address, else ``fallback``."""
    for address in addresses:
        if not is_bogon(address[0]):
            return address
    return fallback


class SecurePayload:
    """Sealing of holepunch payloads with a handshake's holepunch secret, and our host tokens
    (lib/secure-payload.js)."""

    def __init__(self, holepunch_secret: bytes, local_secret: bytes) -> None:
        if len(holepunch_secret) != 32 or len(local_secret) != 32:
            raise ValueError("secrets are 32 bytes")
        self._shared = holepunch_secret
        self._local = local_secret

    def seal(self, payload: HolepunchPayload) -> bytes:
        return seal_holepunch(payload, self._shared)

    def open(self, data: bytes) -> HolepunchPayload | None:
        """The payload, or None when it is forged or malformed."""
        try:
            return open_holepunch(data, self._shared)
        except DecodeError:
            return None

    def token(self, host: str) -> bytes:
        """blake2b-256 of the host's UTF-8 bytes, keyed with our per-session secret."""
        return hashlib.blake2b(host.encode(), digest_size=32, key=self._local).digest()


class PunchBudget:
    """hyperdht's limit on random-NAT punches per node: ``limit`` at a time, and a new one only
    ``interval`` seconds after the last one ended, connected or not (holepuncher.js sets
    ``_lastRandomPunch`` whenever a randomized punch ends).  Time comes in as ``now``."""

    def __init__(self, limit: int = RANDOM_PUNCH_LIMIT, interval: float = RANDOM_PUNCH_INTERVAL) -> None:
        self.limit = limit
        self.interval = interval
        self.active = 0
        self.last_end: float | None = None

    def allows(self, now: float) -> bool:
        if self.active >= self.limit:
            return False
        return self.last_end is None or now - self.last_end >= self.interval

    def begin(self) -> None:
        """A randomized punch starts (also the short hold of a client's punch round)."""
        self.active += 1

    def release(self) -> None:
        """The client's punch round is answered: its hold ends without counting as a punch."""
        self.active -= 1

    def end(self, now: float) -> None:
        """A randomized punch ended, connected or not."""
        self.active -= 1
        self.last_end = now
