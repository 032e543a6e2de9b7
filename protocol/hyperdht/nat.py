"""NAT classification from address samples, as hyperdht's lib/nat.js (holepunch.md §1).

A puncher socket PINGs a few DHT nodes; each reply says where our packet came from (``to``).
:class:`NatAnalyzer` counts those samples per host and per host:port and decides whether the
NAT in front of that socket keeps one external port for every destination (CONSISTENT), picks
a new one per destination (RANDOM), or is not known yet.  Sans-IO: the caller sends the pings
(:meth:`NatAnalyzer.sample_targets` picks whom) and feeds the answers in.
"""

from __future__ import annotations

from dataclasses import dataclass

from hyperswarm_hugin.protocol.encoding import Address
from hyperswarm_hugin.protocol.hyperdht.constants import Firewall

MIN_SAMPLES = 4
SKIP_NEWEST = 5
SKIP_WHEN_AT_LEAST = 8


@dataclass(slots=True)
class Sample:
    """One external address we were seen at, and how many responders saw it."""

    host: str
    port: int
    hits: int = 1

    @property
    def address(self) -> Address:
        return (self.host, self.port)


class NatAnalyzer:
    """Samples of one socket's external address and what they say about its NAT."""

    def __init__(self, firewalled: bool) -> None:
        self.firewalled = firewalled
        self.firewall = Firewall.UNKNOWN if firewalled else Firewall.OPEN
        self.addresses: list[Sample] | None = None
        self.sampled = 0
        self.frozen = False
        self.min_samples = MIN_SAMPLES
        self.hosts: list[Sample] = []
        self.full: list[Sample] = []
        self._visited: dict[Address, bool] = {}  # responder -> answered

    @property
    def settled(self) -> bool:
        """What hyperdht's ``analyzing`` promise waits for: a sample that left us with a usable
        class, or enough samples (the caller also ends the wait when sampling is over)."""
        usable = self.firewall in (Firewall.CONSISTENT, Firewall.OPEN) and self.sampled > 0
        return usable or self.sampled >= self.min_samples

    def sample_targets(self, newest_first: list[Address], pending: int = 0) -> list[Address]:
        """Which DHT nodes to ping next: walking from the newest, the 5 newest skipped when
        there are at least 8, each responder asked once, up to ``min_samples`` in all."""
        skip = SKIP_NEWEST if len(newest_first) >= SKIP_WHEN_AT_LEAST else 0
        chosen: list[Address] = []
        for address in newest_first[skip:]:
            if self.sampled + pending + len(chosen) >= self.min_samples:
                break
            if address in self._visited:
                continue
            self._visited[address] = False
            chosen.append(address)
        return chosen

    def add(self, seen_as: Address, responder: Address) -> None:
        """``responder`` saw our packet come from ``seen_as``; one sample per responder."""
        if self._visited.get(responder):
            return
        self._visited[responder] = True
        _count(self.hosts, seen_as[0], 0)
        _count(self.full, seen_as[0], seen_as[1])
        self.sampled += 1
        if (self.sampled >= 3 or not self.firewalled) and not self.frozen:
            self.update()

    def update(self) -> None:
        if self.firewalled and self.firewall is Firewall.OPEN:
            self.firewall = Firewall.UNKNOWN
        self.firewall = classify(self.firewalled, self.sampled, self.hosts, self.full, self.firewall)
        self.addresses = advertised(self.firewall, self.hosts, self.full)

    def freeze(self) -> None:
        """Stop re-deciding: what we told the other peer stays true for this punch."""
        self.frozen = True

    def unfreeze(self) -> None:
        self.frozen = False
        self.update()

    def stop(self) -> None:
        """No more samples are coming (the socket is gone)."""
        self.min_samples = 0

    @property
    def advertised(self) -> list[Address] | None:
        """The addresses to send in a holepunch payload."""
        return None if self.addresses is None else [s.address for s in self.addresses]


def classify(firewalled: bool, sampled: int, hosts: list[Sample], full: list[Sample],
             current: Firewall = Firewall.UNKNOWN) -> Firewall:
    """nat.js ``_updateFirewall``: the class the samples support, or ``current`` if undecided."""
    if not firewalled:
        return Firewall.OPEN
    if sampled < 3:
        return current
    top = full[0].hits
    if top >= 3:
        return Firewall.CONSISTENT
    if top == 1:
        return Firewall.RANDOM
    if len(hosts) == 1 and sampled > 3:  # one host, two samples disagree: random
        return Firewall.RANDOM
    if len(hosts) > 1 and full[1].hits > 1:  # two hosts each seen twice: consistent
        return Firewall.CONSISTENT
    if sampled > 4:
        return Firewall.RANDOM
    return current


def advertised(firewall: Firewall, hosts: list[Sample], full: list[Sample]) -> list[Sample] | None:
    """nat.js ``_updateAddresses``: RANDOM gives the host with port 0; CONSISTENT the samples
    seen at least twice, or at least the top two.  OPEN gives the same as CONSISTENT, where
    hyperdht gives nothing: a Hugin client never claims to be open in its handshake, so a
    server behind a random NAT punches to it, and needs an address to verify (hyperdht's open
    client is connected to instead)."""
    if firewall is Firewall.RANDOM:
        return [hosts[0]] if hosts else None
    if firewall in (Firewall.CONSISTENT, Firewall.OPEN) and full:
        out: list[Sample] = []
        for sample in full:
            if sample.hits >= 2 or len(out) < 2:
                out.append(sample)
        return out
    return None


def _count(samples: list[Sample], host: str, port: int) -> None:
    """Count one hit, keeping ``samples`` ordered by hits (ties: first seen first)."""
    for i, sample in enumerate(samples):
        if sample.host != host or sample.port != port:
            continue
        sample.hits += 1
        while i > 0 and samples[i - 1].hits < sample.hits:
            samples[i - 1], samples[i] = samples[i], samples[i - 1]
            i -= 1
        return
    samples.append(Sample(host, port))
