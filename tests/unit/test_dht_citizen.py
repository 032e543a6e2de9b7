"""A good citizen of a real DHT (issue 17): tables that stay healthy, wake-up detection, lookups
that see every reply.  Long runs on the fake clock of :mod:`tests.simnet`."""

from __future__ import annotations

import random

from hyperswarm_hugin.actors.messages import FindNodeResult
from hyperswarm_hugin.dht import _peers
from hyperswarm_hugin.protocol.dht import messages as m
from hyperswarm_hugin.protocol.dht.events import NodeWokeUp, QueryDone, RequestDone
from hyperswarm_hugin.protocol.dht.ids import node_id
from hyperswarm_hugin.protocol.dht.node import DHTNode, NodeOptions
from hyperswarm_hugin.protocol.errors import DecodeError
from hyperswarm_hugin.protocol.hyperdht import messages as h
from hyperswarm_hugin.protocol.hyperdht.handler import HyperDHTHandler
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
