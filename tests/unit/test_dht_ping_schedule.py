"""How often a node pings its table (issue 17: a good citizen sends no more table checks than
dht-rpc 6.27 does).

One node on the fake clock, its peers scripted: each answers every request at once with its
id, and speaks when the script says.  Beside it runs a reference of dht-rpc's rules, fed only
with the traffic seen on the wire; at every decision (a sweep tick, a newcomer to a full row)
it says how many check pings dht-rpc sends and to which nodes, and the node must agree:

- every 8th tick the sweep (``_pingSome``) pings the 5 nodes heard from longest ago, only 2
  when even the oldest was dealt with less than 12 ticks ago (``RECENT_NODE``);
- a newcomer to a full row (``_onfullrow``) costs one ping of the row's node dealt with longest
  ago, none if that one was dealt with less than 12 ticks ago and joined over 360 ticks ago
  (``OLD_NODE``);
- "dealt with" (dht-rpc's ``pinged``) is any contact: a check ping of ours *or* any message
  from the node with its id; "heard from" (``seen``) only the latter.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from hyperswarm_hugin.protocol.dht import messages as m
from hyperswarm_hugin.protocol.dht.ids import node_id, shared_prefix_bits
from hyperswarm_hugin.protocol.dht.node import SERVER, DHTNode, NodeOptions
from hyperswarm_hugin.protocol.dht.routing_table import ROWS
from hyperswarm_hugin.protocol.encoding import Address

HOST = "127.0.0.1"
OURS: Address = (HOST, 4000)
WALL = 1_700_000_000.0
TICK = 5.0

# dht-rpc 6.27's constants (index.js), restated so that the reference does not read ours.
SWEEP_EVERY = 8
SWEEP_COUNT = 5
SWEEP_COUNT_BUSY = 3  # more than 2 requests in flight
SWEEP_COUNT_RECENT = 2
RECENT_NODE = 12
OLD_NODE = 360
K = 20


@dataclass
class Entry:
    added: int
    pinged: int
    seen: int


@dataclass
class DhtRpcReference:
    """dht-rpc's table bookkeeping and check decisions, for a network where every node answers."""

    own_id: bytes
    tick: int
    entries: dict[Address, Entry] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)
    expected: dict[str, int] = field(default_factory=lambda: {"sweep": 0, "full row": 0})
    sweeps: list[int] = field(default_factory=list)
    """How many pings each sweep sends."""

    def row(self, address: Address) -> int:
        return min(shared_prefix_bits(self.own_id, node_id(address)), ROWS - 1)

    def heard(self, address: Address) -> Address | None:
        """``address`` reached us with its id (``_addNodeFromNetwork``); a newcomer to a full row
        gives the row member dht-rpc re-pings (the caller checks the node did), or None."""
        entry = self.entries.get(address)
        if entry is not None:
            entry.pinged = entry.seen = self.tick
            return None
        row = [a for a in self.entries if self.row(a) == self.row(address)]
        if len(row) < K:
            self.entries[address] = Entry(self.tick, self.tick, self.tick)
            return None
        candidates = [a for a in row if self.entries[a].pinged != self.tick]
        if not candidates:
            return None
        oldest = min(candidates, key=lambda a: (self.entries[a].pinged, self.entries[a].added))
        e = self.entries[oldest]
        if self.tick - e.pinged < RECENT_NODE and self.tick - e.added > OLD_NODE:
            return None
        return oldest

    def check_full_row(self, newcomer: Address, sent: list[Address]) -> None:
        """The node heard ``newcomer`` and sent check pings ``sent``: as dht-rpc would?"""
        want = self.heard(newcomer)
        if want is None:
            if sent:
                self.mismatches.append(f"tick {self.tick}: newcomer pinged {sent}, dht-rpc pings nobody")
            return
        self.expected["full row"] += 1
        key = (self.entries[want].pinged, self.entries[want].added)
        if len(sent) != 1 or (self.entries[sent[0]].pinged, self.entries[sent[0]].added) != key:
            self.mismatches.append(f"tick {self.tick}: newcomer pinged {sent}, dht-rpc pings one with {key}")
        for address in sent:
            self.entries[address].pinged = self.tick

    def check_sweep(self, sent: list[Address], inflight: int) -> None:
        """A tick began and the node sent check pings ``sent``: as dht-rpc's ``_ontick`` would?"""
        self.tick += 1
        if self.tick % SWEEP_EVERY:
            if sent:
                self.mismatches.append(f"tick {self.tick}: pinged {len(sent)} between sweeps")
            return
        by_seen = sorted(self.entries.values(), key=lambda e: e.seen)
        count = SWEEP_COUNT_BUSY if inflight > 2 else SWEEP_COUNT
        if by_seen and self.tick - by_seen[0].pinged < RECENT_NODE:
            count = SWEEP_COUNT_RECENT
        want = sorted(e.seen for e in by_seen[:count])
        self.expected["sweep"] += len(want)
        self.sweeps.append(len(want))
        if sorted(self.entries[a].seen for a in sent if a in self.entries) != want or len(sent) != len(want):
            self.mismatches.append(f"tick {self.tick}: sweep pinged {len(sent)}, dht-rpc {len(want)} "
                                   f"(oldest dealt with {self.tick - by_seen[0].pinged} ticks ago)")
        for address in sent:
            if address in self.entries:
                self.entries[address].pinged = self.tick


class ScriptedPeers:
    """Drives one node: fires its timers, answers every request it sends, delivers our script's
    requests, and reports the traffic in order."""

    def __init__(self, node: DHTNode, peers: list[Address]) -> None:
        self.node = node
        self.peers = set(peers)
        self.now = 0.0
        self._tid = 0

    def _answer(self) -> list[tuple[str, Address]]:
        """Answer everything the node sent until it is quiet: ``("ping", peer)`` for each check
        PING, ``("answer", peer)`` for each reply (with the peer's id) fed back, in order."""
        events: list[tuple[str, Address]] = []
        while batch := self.node.datagrams_to_send():
            for data, to, socket in batch:
                msg = m.decode_message(data)
                if not isinstance(msg, m.Request) or to not in self.peers:
                    continue
                if msg.internal and msg.command == m.PING:
                    events.append(("ping", to))
                res = m.Response(tid=msg.tid, to=OURS, id=node_id(to))
                self.node.receive_datagram(res.encode(), to, socket, self.now)
                events.append(("answer", to))
        return events

    def tick(self) -> list[tuple[str, Address]]:
        """Run the node's timers up to its next tick, included."""
        end = (self.now // TICK + 1) * TICK
        events: list[tuple[str, Address]] = []
        while (t := self.node.get_timer()) is not None and t <= end:
            self.now = t
            self.node.handle_timer(t, wall=WALL + t)
            events += self._answer()
        self.now = end
        return events

    def speak(self, peer: Address) -> list[tuple[str, Address]]:
        """``peer`` sends the node a PING with its id."""
        self._tid = (self._tid + 1) & 0xFFFF
        req = m.Request(tid=self._tid, to=OURS, command=m.PING, internal=True, id=node_id(peer))
        self.node.receive_datagram(req.encode(), peer, SERVER, self.now)
        return self._answer()


def _peers(own_id: bytes, row0: int, others: int) -> tuple[list[Address], list[Address]]:
    """Addresses whose ids fall in row 0 of ``own_id``'s table (``row0`` of them) and in rows
    above it (``others``)."""
    first: list[Address] = []
    rest: list[Address] = []
    port = 5000
    while len(first) < row0 or len(rest) < others:
        address = (HOST, port)
        port += 1
        if shared_prefix_bits(own_id, node_id(address)) == 0:
            if len(first) < row0:
                first.append(address)
        elif len(rest) < others:
            rest.append(address)
    return first, rest


def _replay(ref: DhtRpcReference, events: list[tuple[str, Address]],
            check: Callable[[list[Address]], None]) -> None:
    """Hand ``events`` to the reference: first the check pings the node decided on (``check``
    judges them against the state before), then every answer (the peers' ids heard)."""
    sent = [a for kind, a in events if kind == "ping"]
    check(sent)
    for kind, address in events:
        if kind == "answer":
            ref.heard(address)


def test_table_checks_follow_dht_rpcs_schedule_on_a_busy_then_quiet_table() -> None:
    node = DHTNode(NodeOptions(ephemeral=False, firewalled=False, nat_seed=OURS),
                   server_port=OURS[1], client_port=OURS[1] + 1, now=0.0, rng=random.Random(2), wall=WALL)
    node.bootstrap(0.0)
    assert node.bootstrapped and node.id is not None
    members, others = _peers(node.table.id, K + 1, 6)
    newcomer = members.pop()  # row 0 holds K: the last one never gets in
    driver = ScriptedPeers(node, members + others + [newcomer])
    ref = DhtRpcReference(node.table.id, node.tick)
    counted = {"sweep": 0, "full row": 0}

    def run_tick() -> None:
        # Every request is answered at once: none is in flight when a tick begins.
        events = driver.tick()
        counted["sweep"] += sum(1 for kind, _ in events if kind == "ping")
        _replay(ref, events, lambda sent: ref.check_sweep(sent, inflight=0))

    def speak(peer: Address) -> None:
        events = driver.speak(peer)
        pings = sum(1 for kind, _ in events if kind == "ping")
        if peer == newcomer:
            counted["full row"] += pings
            _replay(ref, events, lambda sent: ref.check_full_row(newcomer, sent))
        else:
            assert pings == 0
            ref.heard(peer)
            _replay(ref, events, lambda sent: None)

    run_tick()
    for peer in members + others:  # everyone joins in the same tick
        speak(peer)
    assert len(node.table) == len(members) + len(others)

    # Busy: every table node speaks every 5th tick, a fifth of them each tick.  For 10
    # minutes the sweep needs 2 pings, not 5: even the oldest was heard from 5 ticks ago.  Then
    # for 25 minutes a newcomer to the full row 0 speaks too, each tick: one ping of a row
    # member each time, until row 0's nodes are old (30 minutes): heard from so recently, they
    # keep their places without a ping.
    table = members + others
    late_full_row = 0
    for i in range(420):
        run_tick()
        before = counted["full row"]
        if i >= 120:
            speak(newcomer)
        for peer in table[i % 5::5]:
            speak(peer)
        if i > OLD_NODE + 5:
            late_full_row += counted["full row"] - before

    # Quiet for 10 minutes: the nodes only answer.  Now the sweep pings 5 (the oldest was last
    # dealt with a sweep cycle ago).
    for _ in range(120):
        run_tick()

    assert ref.mismatches == []
    assert set(ref.sweeps) == {SWEEP_COUNT_RECENT, SWEEP_COUNT}  # both kinds of sweep were seen
    assert late_full_row == 0
    assert counted == ref.expected
    assert node.stats.check_pings == sum(counted.values())
    assert {n.address for n in node.table} == set(ref.entries)


def test_rows_a_node_had_when_it_became_persistent_never_check_a_full_row_as_in_dht_rpc() -> None:
    # dht-rpc 6.27 copies the table into a new one (the persistent id) before it listens for new
    # rows: a newcomer to a row that got members in the copy costs no ping.  A row created
    # afterwards is checked as usual.
    def full_row_pings(copied: bool) -> int:
        node = DHTNode(NodeOptions(ephemeral=False, firewalled=False, nat_seed=OURS),
                       server_port=OURS[1], client_port=OURS[1] + 1, now=0.0, rng=random.Random(2), wall=WALL)
        node.bootstrap(0.0)
        members, _ = _peers(node.table.id, K + 1, 0)
        newcomer = members.pop()
        driver = ScriptedPeers(node, [*members, newcomer])
        driver.tick()
        for peer in members:
            driver.speak(peer)
        if copied:
            node.table = node.table.copy_to(node.table.id)
            assert node.table.unchecked_rows == {0} and len(node.table) == K
        for _ in range(3):
            driver.tick()
            driver.speak(newcomer)
        return node.stats.full_row_pings

    assert full_row_pings(copied=False) == 3
    assert full_row_pings(copied=True) == 0
