"""Where the time to connect goes in a cell with one RANDOM NAT (bench/natlab.py --split), from
packet captures on both lab hosts (tests/natlab/capture.py): the deterministic part (from the
client's connect call until both sides probe: handshake, PEER_HOLEPUNCH rounds, NAT analysis,
the birthday side's sockets opened) and the random part (the birthday search: how many
random-port probes the consistent side sent until one met a mapping, and how fast).

The birthday side B sits behind the RANDOM router; the consistent side C probes random ports
of B's router.  From the captures (timestamps from the kernel, one clock for every namespace):

- ``open_start`` / ``open_end``: B's first probe from the first and the last of its 255
  birthday sockets (the first probe from each new source port, in one burst; the puncher's
  own socket, which shows up before or after the burst, is left out).
- ``random_start``: C's first TTL-64 probe towards B's router (a server's one fast-mode ping
  may be counted with them: +-1 probe).
- ``search_start``: max(random_start, open_end): from then on every probe can hit.
- ``hit``: the first probe that passed a NAT (arrived at either host from the other router).
- ``probes_to_hit``: C's random-port probes sent up to the hit; ``probes_in_search`` those from
  ``search_start`` on.

    split = split_run(packets_a, packets_b, birthday="hB", connect_start=T, connected=T2)
"""

from __future__ import annotations

import itertools
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST_IP = {"hA": "10.0.1.2", "hB": "10.0.2.2"}
ROUTER_IP = {"hA": "192.88.99.2", "hB": "192.88.99.3"}
OTHER = {"hA": "hB", "hB": "hA"}
LOW_TTL = 5
PEER_HANDSHAKE, PEER_HOLEPUNCH = 0, 1
BIRTHDAY_SOCKETS = 256
BURST_GAP = 0.08


@dataclass
class Packet:
    t: float  # seconds, CLOCK_REALTIME
    out: bool
    src: tuple[str, int]
    dst: tuple[str, int]
    ttl: int
    size: int
    head: bytes = b""

    @property
    def probe(self) -> bool:
        return self.size <= 1


def _address(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    return host, int(port)


def load(path: Path) -> list[Packet]:
    """The packets capture.py wrote (an empty list if it wrote none)."""
    found: list[Packet] = []
    if not path.exists():
        return found
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        raw: dict[str, Any] = json.loads(line)
        found.append(Packet(raw["t"] / 1e9, raw["dir"] == "out", _address(raw["src"]), _address(raw["dst"]),
                            raw["ttl"], raw["len"], bytes.fromhex(raw.get("head", ""))))
    found.sort(key=lambda p: p.t)
    return found


def dht_request(head: bytes) -> tuple[int, int] | None:
    """(tid, command) of a dht-rpc request that is not internal (hyperdht's commands), else None."""
    if len(head) < 11 or head[0] != 0x03:
        return None
    flags = head[1]
    if flags & 0x04:  # internal: ping, find_node, ...
        return None
    pos = 10 + (32 if flags & 0x01 else 0) + (32 if flags & 0x02 else 0)
    if pos >= len(head):
        return None
    return head[2] | (head[3] << 8), head[pos]


def dht_response_tid(head: bytes) -> int | None:
    if len(head) < 4 or head[0] != 0x13:
        return None
    return head[2] | (head[3] << 8)


@dataclass
class Split:
    """One run's timeline (seconds from the client's connect call) and search counts; None
    where the captures did not show it."""

    connect_start: float
    process_start: float | None = None  # the connect call, seconds after the client process started
    first_packet: float | None = None  # the client's first datagram, seconds after its process started
    handshake: float | None = None  # the client's PEER_HANDSHAKE request left
    rounds: list[tuple[float, float | None]] = field(default_factory=list)  # PEER_HOLEPUNCH (sent, reply)
    open_start: float | None = None
    open_end: float | None = None
    sockets: int = 0
    random_start: float | None = None
    search_start: float | None = None
    hit: float | None = None
    connected: float | None = None
    probes_to_hit: int | None = None
    probes_in_search: int | None = None
    random_interval_ms: float | None = None  # median gap between C's random-port probes (see probe_period_ms)
    keepalive_interval_ms: float | None = None  # median gap between B's probes after its sockets opened
    random_sent: int = 0
    random_distinct: int = 0
    port_range: tuple[int, int] | None = None

    @property
    def deterministic(self) -> float | None:
        """From the connect call until the search began (or the hit, when a probe met a mapping
        before both sides probed: the lab's TTL-5 probes reach the far router)."""
        ends = [t for t in (self.search_start, self.hit) if t is not None]
        return min(ends) if ends else None

    @property
    def search(self) -> float | None:
        """The birthday search's length: from its start to the hit (0 when the hit came first)."""
        if self.hit is None:
            return None
        return max(0.0, self.hit - self.search_start) if self.search_start is not None else 0.0

    @property
    def probe_period_ms(self) -> float | None:
        """The consistent side's mean interval between random-port probes up to the hit (its
        probe rate; the median gap hides a schedule that drifts), from runs of 20 probes or more."""
        if self.hit is None or self.random_start is None or not self.probes_to_hit or self.probes_to_hit < 20:
            return None
        return (self.hit - self.random_start) / (self.probes_to_hit - 1) * 1000

    @property
    def probes_searched(self) -> int | None:
        """Random-port probes from the search's start to the hit (0 when the hit came first)."""
        if self.hit is None:
            return None
        return self.probes_in_search or 0


def _largest_burst(times: list[float], gap: float = BURST_GAP) -> list[float]:
    """The longest run of ``times`` (sorted) with no gap over ``gap`` s: the birthday sockets'
    first probes leave in one burst; the puncher's own socket shows up apart from it (its
    fast-open probe before, or its first keep-alive probe 100 ms after)."""
    best: list[float] = []
    run: list[float] = []
    for t in times:
        if run and t - run[-1] > gap:
            run = []
        run.append(t)
        if len(run) > len(best):
            best = list(run)
    return best


def _median_gap(times: list[float]) -> float | None:
    gaps = [b - a for a, b in itertools.pairwise(times)]
    return statistics.median(gaps) * 1000 if gaps else None


def split_run(packets: dict[str, list[Packet]], *, birthday: str, client: str, connect_start: float,
              connected: float | None, process_started: float | None = None) -> Split:
    """The timeline of one run: ``packets`` per host (hA, hB), ``birthday``: the host behind the
    RANDOM router, ``client``: the client's host, ``connect_start``/``connected``: realtime
    seconds of the client's connect call and its connection line (``process_started``: of the
    client process's start)."""
    consistent = OTHER[birthday]
    found = Split(connect_start=connect_start)
    if process_started is not None:
        found.process_start = connect_start - process_started
        first = next((p.t for p in packets[client] if p.out and p.t >= process_started), None)
        found.first_packet = None if first is None else first - process_started

    def rel(t: float | None) -> float | None:
        return None if t is None else t - connect_start

    found.connected = rel(connected)
    # the client's hyperdht requests (handshake, holepunch rounds) and their replies
    sent: dict[int, tuple[float, int]] = {}
    replies: dict[int, float] = {}
    for p in packets[client]:
        if p.probe or p.t < connect_start:
            continue
        if p.out and (req := dht_request(p.head)) is not None:
            sent.setdefault(req[0], (p.t, req[1]))
        elif not p.out and (tid := dht_response_tid(p.head)) is not None:
            replies.setdefault(tid, p.t)
    for tid, (t, command) in sorted(sent.items(), key=lambda item: item[1][0]):
        if command == PEER_HANDSHAKE and found.handshake is None:
            found.handshake = rel(t)
        elif command == PEER_HOLEPUNCH:
            reply = replies.get(tid)
            found.rounds.append((t - connect_start, None if reply is None else reply - connect_start))
    after = [p for p in packets[birthday] if p.t >= connect_start]
    # B's probes towards C's router: the first from each source port
    b_probes = [p for p in after if p.out and p.probe and p.dst[0] == ROUTER_IP[consistent]]
    first_seen: dict[int, float] = {}
    for p in b_probes:
        first_seen.setdefault(p.src[1], p.t)
    burst = _largest_burst(sorted(first_seen.values()))
    found.sockets = len(first_seen)
    if len(burst) >= 2:
        burst = burst[-(BIRTHDAY_SOCKETS - 1):]  # the puncher's own socket opened before
        found.open_start, found.open_end = rel(burst[0]), rel(burst[-1])
        keepalive = [p.t for p in b_probes if p.t > burst[-1]]
        found.keepalive_interval_ms = _median_gap(keepalive)
    c_after = [p for p in packets[consistent] if p.t >= connect_start]
    hits = [p.t for p in after if not p.out and p.probe and p.src[0] == ROUTER_IP[consistent]]
    hits += [p.t for p in c_after if not p.out and p.probe and p.src[0] == ROUTER_IP[birthday]]
    hit = min(hits) if hits else None
    found.hit = rel(hit)
    randoms = [p for p in c_after if p.out and p.probe and p.ttl > LOW_TTL and p.dst[0] == ROUTER_IP[birthday]]
    if randoms:
        found.random_start = rel(randoms[0].t)
        upto = [p for p in randoms if hit is None or p.t <= hit]
        found.random_sent = len(upto)
        found.random_distinct = len({p.dst[1] for p in upto})
        found.port_range = (min(p.dst[1] for p in upto), max(p.dst[1] for p in upto)) if upto else None
        found.random_interval_ms = _median_gap([p.t for p in upto])
        if found.open_end is not None and found.random_start is not None:
            found.search_start = max(found.open_end, found.random_start)
            if hit is not None:
                found.probes_to_hit = len(upto)
                start = connect_start + found.search_start
                found.probes_in_search = sum(1 for p in upto if p.t >= start)
    return found
