"""A good citizen of a real DHT (issue 17): tables that stay healthy, wake-up detection, lookups
that see every reply.  Long runs on the fake clock of :mod:`tests.simnet`."""

from __future__ import annotations

import random
from collections.abc import Callable

from hyperswarm_hugin.actors.messages import FindNodeResult
from hyperswarm_hugin.dht import _peers
from hyperswarm_hugin.protocol.dht import messages as m
from hyperswarm_hugin.protocol.dht.events import NodeWokeUp, QueryDone, RequestDone
from hyperswarm_hugin.protocol.dht.ids import node_id
from hyperswarm_hugin.protocol.dht.node import SERVER, DHTNode, NodeOptions
from hyperswarm_hugin.protocol.errors import DecodeError
from hyperswarm_hugin.protocol.hugin import KeyPair
from hyperswarm_hugin.protocol.hyperdht import messages as h
from hyperswarm_hugin.protocol.hyperdht.handler import HyperDHTHandler
from hyperswarm_hugin.protocol.hyperdht.signing import sign_announce
from tests.simnet import SimNet, sim_testnet


def kill(net: SimNet, node: DHTNode) -> None:
    """Take ``node`` off the network: nothing reaches it and it sends nothing more."""
    net.nodes.remove(node)
    net.sockets = {a: s for a, s in net.sockets.items() if s[0] is not node}


def entries_for(net: SimNet, nodes: list[DHTNode]) -> int:
    """How many table entries of the nodes still on ``net`` point at ``nodes``."""
    addresses = {net.address(n) for n in nodes}
    return sum(1 for holder in net.nodes for entry in holder.table if entry.address in addresses)


def test_nodes_that_answer_without_their_id_leave_the_tables_and_dead_ones_do_not_linger() -> None:
    # Three nodes go ephemeral (a Node adaptive node after waking: its replies carry no id) and
    # five die.  dht-rpc drops a table node whose check ping comes back without its id; a node
    # that keeps such entries also keeps re-pinging them first, and its dead entries stay.
    net = sim_testnet(30, seed=7)
    net.advance(60.0)
    idless = net.nodes[3:6]
    dead = net.nodes[10:15]
    assert entries_for(net, idless) > 0 and entries_for(net, dead) > 0
    for node in idless:
        node.ephemeral = True
    for node in dead:
        kill(net, node)
    net.advance(15 * 60.0)
    assert entries_for(net, dead) == 0
    assert entries_for(net, idless) == 0
    assert all(len(n.table) >= 15 for n in net.nodes if n not in idless)


def _silent_to_app_requests(data: bytes) -> bool:
    """A loss rule: application (non-internal) requests vanish, everything else arrives."""
    try:
        msg = m.decode_message(data)
    except DecodeError:
        return False
    return isinstance(msg, m.Request) and not msg.internal


def test_an_application_request_that_times_out_does_not_evict_a_healthy_node() -> None:
    # A silent Hugin refusal or a stale route: the node is alive and answers pings.
    net = sim_testnet(6)
    net.loss = _silent_to_app_requests
    origin, peer = net.nodes[1], net.nodes[4]
    assert peer.id is not None and origin.table.has(peer.id)
    rid = origin.request(net.address(peer), 77, now=net.now, target=bytes(32))
    done: list[RequestDone] = []
    net.run_until(lambda: bool(done.extend(e for e in net.take_events(origin)
                                           if isinstance(e, RequestDone) and e.rid == rid) or done))
    assert done[0].error == "REQUEST_TIMEOUT"
    assert origin.table.has(peer.id)


def test_a_query_visit_that_times_out_evicts_the_node() -> None:
    net = sim_testnet(6)
    origin, victim = net.nodes[1], net.nodes[4]
    victim_id = victim.id
    assert victim_id is not None and origin.table.has(victim_id)
    kill(net, victim)
    origin.find_node(victim_id, net.now)
    net.run_until(lambda: not origin.table.has(victim_id), limit=30.0)
    assert origin.stats.table_removals >= 1


def test_a_lookup_finds_records_held_just_outside_the_final_closest_nodes() -> None:
    # After churn, nodes closer to a topic joined and the records sit at the 21st-30th closest.
    # hyperdht streams every reply of the walk; DHT.lookup (and the swarm's announce_and_lookup)
    # must see those records too, not only the final closest 20.
    net = sim_testnet(60, seed=3)
    for node in net.nodes:
        node.app = HyperDHTHandler(node)
    topic = random.Random(5).randbytes(32)
    by_distance = sorted(net.nodes, key=lambda n: int.from_bytes(n.table.id, "big") ^ int.from_bytes(topic, "big"))
    key = bytes(range(32))
    for holder in by_distance[20:30]:
        handler = holder.app
        assert isinstance(handler, HyperDHTHandler)
        handler.storage.records.add(topic, key, h.PeerRecord(key, []).encode(), net.now)
    origin = by_distance[-1]
    qid = origin.query(topic, h.LOOKUP, now=net.now)
    done: list[QueryDone] = []
    net.run_until(lambda: bool(done.extend(e for e in net.take_events(origin)
                                           if isinstance(e, QueryDone) and e.qid == qid) or done))
    result = done[0]
    assert {r.address for r in result.closest} == {net.address(n) for n in by_distance[:20]}
    assert _peers(FindNodeResult(0, result.closest, result.error)) == []  # the final 20 hold none
    found = _peers(FindNodeResult(0, result.closest, result.error, result.replies))
    assert [p.public_key for p in found] == [key]


def test_a_node_that_slept_notices_the_wall_clock_jump_and_rechecks_its_table() -> None:
    # Its monotonic clock stood still for the hour it slept; only the wall clock tells.
    net = sim_testnet(10, seed=4)
    laptop = net.add_node(NodeOptions(bootstrap=[net.address(net.nodes[0])], ephemeral=None))
    net.advance(25 * 60.0)
    assert laptop.id is not None  # the adaptive node became persistent
    gone = [n for n in net.nodes[1:4] if laptop.table.has(n.table.id)]
    assert gone
    net.take_events(laptop)
    for node in gone:
        kill(net, node)
    net.sleep(laptop, 3600.0)
    net.advance(6.0)
    assert any(isinstance(e, NodeWokeUp) for e in net.take_events(laptop))
    assert laptop.id is None  # adaptive: ephemeral again until a check passes (as dht-rpc)
    net.run_until(lambda: not any(laptop.table.has(n.table.id) for n in gone), limit=60.0)


def test_a_persistent_node_that_wakes_on_another_network_gives_up_its_old_id() -> None:
    net = sim_testnet(10, seed=6)
    server = net.nodes[5]
    old_id = server.id
    assert old_id == node_id(net.address(server))
    net.advance(30.0)
    net.move(server, "127.0.0.2")
    net.sleep(server, 600.0)
    new_id = node_id(net.address(server))
    net.run_until(lambda: server.id == new_id, limit=180.0)
    net.advance(60.0)
    assert sum(1 for n in net.nodes if n is not server and n.table.has(new_id)) >= 3


def test_a_walk_with_k_replies_ends_once_its_only_unanswered_visit_has_timed_out_once() -> None:
    # A walk from the previous closest nodes (an announce) where one of them died: as in dht-rpc,
    # once every visit still in flight has missed its first timeout (1 s) and k nodes answered,
    # the walk is done; it does not wait out the dead node's five retries.
    net = sim_testnet(40, seed=6)
    net.advance(30.0)
    origin = net.nodes[1]
    target = random.Random(8).randbytes(32)
    first = origin.query(target, m.FIND_NODE, now=net.now, internal=True)
    done: list[QueryDone] = []

    def finished(qid: int) -> Callable[[], bool]:
        def check() -> bool:
            done.extend(e for e in net.take_events(origin) if isinstance(e, QueryDone) and e.qid == qid)
            return bool(done)
        return check

    net.run_until(finished(first))
    seeds = [r.address for r in done[0].closest]
    assert len(seeds) == 20
    victim = next(n for n in net.nodes if net.address(n) == seeds[0])
    kill(net, victim)
    done.clear()
    started = net.now
    again = origin.query(target, m.FIND_NODE, now=net.now, internal=True, nodes=seeds)
    net.run_until(finished(again), limit=30.0)
    assert len(done[0].closest) == 20
    assert net.address(victim) not in {r.address for r in done[0].closest}
    assert net.now - started < 2.0
    # Told that the node is dead (an announcer's silent relay), a walk never visits it: it ends
    # as soon as the live nodes answered.
    done.clear()
    started = net.now
    third = origin.query(target, m.FIND_NODE, now=net.now, internal=True, nodes=seeds[1:],
                         avoid=[net.address(victim)])
    net.run_until(finished(third), limit=30.0)
    assert len(done[0].closest) == 20
    assert net.now - started < 0.5  # a visit to the dead node would hold it for its first 1 s timeout


def _bump_stored_after(wall_then: float, mono_then: float, bump_wall: float) -> bool:
    """A node told the wall clock 1_000_000 s at monotonic 0 is told ``wall_then`` at monotonic
    ``mono_then`` (a timer); an ANNOUNCE whose bump says ``bump_wall`` (Unix seconds) arrives
    then.  Was the bump kept?"""
    node = DHTNode(NodeOptions(ephemeral=False, firewalled=False, nat_seed=("127.0.0.1", 4000)),
                   server_port=4000, client_port=4001, now=0.0, rng=random.Random(3), wall=1_000_000.0)
    handler = HyperDHTHandler(node)
    node.app = handler
    node.handle_timer(mono_then, wall=wall_then)
    assert node.id is not None
    key_pair = KeyPair.random()
    target = bytes(range(32))  # a topic, not hash(public key): the bump is kept
    client = ("127.0.0.1", 5000)
    token = node.tokens.issue(client[0])
    peer = h.PeerRecord(key_pair.public_key, [])
    signature = sign_announce(key_pair, target, node.id, token, peer.encode())
    ann = h.Announce(peer=peer, signature=signature, bump=int(bump_wall * 1000))
    req = m.Request(tid=1, to=("127.0.0.1", 4000), command=h.ANNOUNCE, internal=False, id=None,
                    token=token, target=target, value=ann.encode())
    assert handler.on_request(req, client, SERVER, mono_then)
    assert handler.storage.records.get(target, mono_then), "the record itself is always stored"
    return handler.storage.bumps.get(target, mono_then) == ann.bump


def test_a_bump_check_follows_the_wall_clock_through_a_suspend_and_a_clock_step() -> None:
    # hyperdht-hugin keeps a bump no more than 60 s ahead of Date.now(); ours read the wall clock
    # as the monotonic clock plus an offset taken at start, which is an hour behind after an hour
    # of suspend (the monotonic clock stood still) and wrong after any step of the wall clock.
    assert _bump_stored_after(1_000_000.0, 10.0, 1_000_010.0)
    # Slept an hour: 10 s of monotonic time, 3610 s of wall time; a bump of now is fine.
    assert _bump_stored_after(1_003_610.0, 10.0, 1_003_610.0)
    # The wall clock was stepped back an hour (NTP): a bump an hour ahead is from the future.
    assert not _bump_stored_after(996_410.0, 10.0, 1_000_010.0)
    # Within the 60 s allowed drift and beyond it.
    assert _bump_stored_after(1_000_000.0, 10.0, 1_000_059.0)
    assert not _bump_stored_after(1_000_000.0, 10.0, 1_000_061.0)
