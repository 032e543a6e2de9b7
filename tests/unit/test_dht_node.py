"""The sans-IO DHT node on a simulated network and a fake clock."""

from __future__ import annotations

import random

import pytest

from hyperswarm_hugin.protocol.dht import messages as m
from hyperswarm_hugin.protocol.dht.congestion import MAX_TOTAL_WINDOW
from hyperswarm_hugin.protocol.dht.events import NodeBecamePersistent, NodeReady, QueryDone, RequestDone
from hyperswarm_hugin.protocol.dht.ids import node_id
from hyperswarm_hugin.protocol.dht.node import CLIENT, SERVER, DHTNode, NodeOptions
from hyperswarm_hugin.protocol.dht.routing_table import sort_by_distance
from hyperswarm_hugin.protocol.encoding import encode_ipv4_address
from tests.simnet import HOST, SimNet, sim_testnet

OUTSIDER = (HOST, 40000)


def query_result(net: SimNet, node: DHTNode, qid: int) -> QueryDone:
    found: list[QueryDone] = []

    def done() -> bool:
        found.extend(e for e in net.take_events(node) if isinstance(e, QueryDone) and e.qid == qid)
        return bool(found)

    net.run_until(done)
    return found[0]


def request_result(net: SimNet, node: DHTNode, rid: int) -> RequestDone:
    found: list[RequestDone] = []

    def done() -> bool:
        found.extend(e for e in net.take_events(node) if isinstance(e, RequestDone) and e.rid == rid)
        return bool(found)

    net.run_until(done)
    return found[0]


def test_testnet_nodes_become_persistent_with_hashed_ids() -> None:
    net = sim_testnet(8)
    for node in net.nodes:
        assert node.bootstrapped
        assert not node.ephemeral
        assert node.id == node_id(net.address(node))
        assert len(node.table) == 7


def test_forced_persistent_node_reports_ready_and_persistent_events() -> None:
    net = sim_testnet(3)
    node = net.add_node(NodeOptions(bootstrap=[net.address(net.nodes[0])], ephemeral=False))
    net.run_until(lambda: node.bootstrapped)
    events = net.take_events(node)
    persistent = [e for e in events if isinstance(e, NodeBecamePersistent)]
    ready = [e for e in events if isinstance(e, NodeReady)]
    assert persistent and persistent[0].address == net.address(node)
    assert ready and ready[0].id == node_id(net.address(node)) and not ready[0].ephemeral


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lookups_return_the_brute_force_closest(seed: int) -> None:
    net = sim_testnet(40, seed=seed)
    rng = random.Random(seed)
    all_ids = [n.id for n in net.nodes if n.id is not None]
    for _ in range(10):
        origin = rng.choice(net.nodes)
        target = rng.randbytes(32)
        result = query_result(net, origin, origin.find_node(target, net.now))
        assert result.error is None
        expected = sort_by_distance(target, [i for i in all_ids if i != origin.id])[:20]
        assert [r.id for r in result.closest] == expected


def test_ephemeral_node_finds_closest_and_stays_out_of_tables() -> None:
    net = sim_testnet(10)
    node = net.add_node(NodeOptions(bootstrap=[net.address(net.nodes[0])], ephemeral=True))
    net.run_until(lambda: node.bootstrapped)
    assert node.ephemeral and node.id is None
    table_id = node.table.id
    assert all(not other.table.has(table_id) for other in net.nodes if other is not node)
    target = random.Random(5).randbytes(32)
    result = query_result(net, node, node.find_node(target, net.now))
    ids = [n.id for n in net.nodes if n.id is not None]
    assert [r.id for r in result.closest] == sort_by_distance(target, ids)[:20]


def test_a_node_that_bootstrapped_before_its_bootstrap_node_was_up_asks_again_within_two_ticks() -> None:
    net = SimNet()
    node = net.add_node(NodeOptions(bootstrap=[(HOST, 20002)], ephemeral=True))  # nobody there yet
    net.run_until(lambda: node.bootstrapped)
    assert len(node.table) == 0
    late = net.add_node(NodeOptions(ephemeral=False, firewalled=False, nat_seed=("?", 0)))
    assert net.address(late) == (HOST, 20002)
    net.advance(2 * 5.0 + 1.0)  # dht-rpc would wait for the 8th tick (40 s)
    assert late.id is not None and node.table.has(late.id)


def test_a_bootstrap_node_that_is_down_is_left_out_of_queries_for_a_while() -> None:
    net = sim_testnet(3)
    dead = (HOST, 40002)
    node = net.add_node(NodeOptions(bootstrap=[dead, net.address(net.nodes[0])], ephemeral=True))
    began = net.now
    net.run_until(lambda: node.bootstrapped)
    assert net.now - began >= 6.0  # the bootstrap query waited out the dead node's 5 retries
    began = net.now
    query_result(net, node, node.find_node(random.Random(7).randbytes(32), net.now))
    assert net.now - began < 1.0  # this one did not ask it
    net.advance(61.0)
    began = net.now
    query_result(net, node, node.find_node(random.Random(8).randbytes(32), net.now))
    assert net.now - began >= 6.0  # a minute later it is asked again


@pytest.mark.parametrize("seed", range(4))
def test_lookups_converge_through_packet_loss(seed: int) -> None:
    rng = random.Random(seed)
    net = sim_testnet(25, seed=seed)
    net.loss = lambda data: rng.random() < 0.2
    ids = [n.id for n in net.nodes if n.id is not None]
    origin = net.nodes[3]
    target = rng.randbytes(32)
    result = query_result(net, origin, origin.find_node(target, net.now))
    expected = sort_by_distance(target, [i for i in ids if i != origin.id])[:20]
    got = [r.id for r in result.closest]
    # Retries find the nearest nodes; like dht-rpc, the walk may end while some far
    # visits are still being retried, so the tail can miss a few.
    assert got[:5] == expected[:5]
    assert len(set(got) & set(expected)) >= 16
    assert got == sorted(got, key=lambda i: int.from_bytes(i, "big") ^ int.from_bytes(target, "big"))


def test_a_dead_node_is_checked_out_of_the_table_after_a_down_hint() -> None:
    net = sim_testnet(6)
    victim = net.nodes[4]
    victim_id = victim.id
    assert victim_id is not None
    net.nodes.remove(victim)
    net.sockets = {a: s for a, s in net.sockets.items() if s[0] is not victim}
    origin = net.nodes[1]
    assert origin.table.has(victim_id)
    start = net.now
    result = request_result(net, origin, origin.ping(net.address(victim), net.now))
    assert result.error == "REQUEST_TIMEOUT"
    assert net.now - start >= 4.0  # four transmissions, one second apart
    assert origin.table.has(victim_id)  # a user request carries no id: as dht-rpc, it evicts nothing
    origin.receive_datagram(m.Request(tid=9, to=net.address(origin), command=m.DOWN_HINT, internal=True,
                                      value=encode_ipv4_address(net.address(victim))).encode(),
                            net.address(net.nodes[2]), SERVER, net.now)
    net.run_until(lambda: not origin.table.has(victim_id), limit=10.0)


class Probe:
    """A raw socket on the simulated network, to hand-craft datagrams."""

    def __init__(self, net: SimNet, target: DHTNode, socket: int = SERVER) -> None:
        self.net = net
        self.target = target
        self.socket = socket
        self.inbox: list[tuple[m.Response | m.Request, tuple[str, int]]] = []

    def send(self, data: bytes, source: tuple[str, int] = OUTSIDER) -> None:
        self.target.receive_datagram(data, source, self.socket, self.net.now)

    def replies(self) -> list[tuple[bytes, tuple[str, int], int]]:
        return self.target.datagrams_to_send()


def test_ping_is_answered_with_an_empty_reply_and_the_observed_address() -> None:
    net = sim_testnet(3)
    node = net.nodes[1]
    net.flush()
    probe = Probe(net, node)
    probe.send(m.Request(tid=0x1234, to=net.address(node), command=m.PING, internal=True,
                         value=bytes(500)).encode())
    [(data, to, socket)] = probe.replies()
    res = m.decode_message(data)
    assert isinstance(res, m.Response)
    assert (res.tid, res.to, to, socket) == (0x1234, OUTSIDER, OUTSIDER, SERVER)
    assert res.id == node.id and res.token is None and res.value is None and not res.closer_nodes
    assert len(data) < 50  # a padded ping never buys a bigger answer


def test_replies_from_the_client_socket_carry_no_id() -> None:
    net = sim_testnet(3)
    node = net.nodes[1]
    net.flush()
    probe = Probe(net, node, socket=CLIENT)
    probe.send(m.Request(tid=1, to=net.address(node), command=m.PING, internal=True).encode())
    [(data, _, socket)] = probe.replies()
    res = m.decode_message(data)
    assert isinstance(res, m.Response) and res.id is None and socket == CLIENT


def test_find_node_reply_lists_the_closest_known_nodes() -> None:
    net = sim_testnet(6)
    node = net.nodes[2]
    net.flush()
    target = bytes(range(32))
    probe = Probe(net, node)
    probe.send(m.Request(tid=9, to=net.address(node), command=m.FIND_NODE, internal=True,
                         target=target).encode())
    [(data, _, _)] = probe.replies()
    res = m.decode_message(data)
    assert isinstance(res, m.Response)
    expected = sort_by_distance(target, [n.id for n in node.table])
    assert [node_id(a) for a in res.closer_nodes] == expected
    assert res.token is None


def test_ping_nat_answers_only_to_the_requesters_own_host() -> None:
    net = sim_testnet(3)
    node = net.nodes[1]
    net.flush()
    probe = Probe(net, node)
    probe.send(m.Request(tid=3, to=net.address(node), command=m.PING_NAT, internal=True,
                         value=(50505).to_bytes(2, "little")).encode(), source=("127.0.0.9", 1234))
    [(data, to, _)] = probe.replies()
    assert to == ("127.0.0.9", 50505)
    res = m.decode_message(data)
    assert isinstance(res, m.Response) and res.to == ("127.0.0.9", 50505)
    for bad in (None, b"\x00", b"\x00\x00"):
        probe.send(m.Request(tid=4, to=net.address(node), command=m.PING_NAT, internal=True,
                             value=bad).encode())
        assert probe.replies() == []


def test_delayed_ping_waits_and_refuses_long_delays() -> None:
    net = sim_testnet(3)
    node = net.nodes[1]
    net.flush()
    probe = Probe(net, node)
    probe.send(m.Request(tid=5, to=net.address(node), command=m.DELAYED_PING, internal=True,
                         value=(2500).to_bytes(4, "little")).encode())
    assert probe.replies() == []
    start = net.now
    timer = node.get_timer()
    while timer is not None and timer <= start + 2.5:
        node.handle_timer(timer)
        replies = [r for r in node.datagrams_to_send() if r[1] == OUTSIDER]
        if replies:
            assert timer == pytest.approx(start + 2.5)
            break
        timer = node.get_timer()
    else:
        pytest.fail("the delayed ping was never answered")
    probe.send(m.Request(tid=6, to=net.address(node), command=m.DELAYED_PING, internal=True,
                         value=(10_001).to_bytes(4, "little")).encode())
    node.handle_timer(net.now + 11)
    assert [r for r in node.datagrams_to_send() if r[1] == OUTSIDER] == []


def test_unknown_and_application_commands_get_unknown_command() -> None:
    net = sim_testnet(4)
    node = net.nodes[1]
    net.flush()
    probe = Probe(net, node)
    target = bytes(32)
    for internal, command in ((True, 9), (False, 7)):
        probe.send(m.Request(tid=7, to=net.address(node), command=command, internal=internal,
                             target=target).encode())
        [(data, _, _)] = probe.replies()
        res = m.decode_message(data)
        assert isinstance(res, m.Response)
        assert res.error == m.UNKNOWN_COMMAND and res.closer_nodes


def test_tokens_are_checked_before_dispatch() -> None:
    net = sim_testnet(4)
    node = net.nodes[1]
    net.flush()
    probe = Probe(net, node)
    probe.send(m.Request(tid=8, to=net.address(node), command=m.PING, internal=True,
                         token=bytes(32)).encode())
    [(data, _, _)] = probe.replies()
    res = m.decode_message(data)
    assert isinstance(res, m.Response) and res.error == m.INVALID_TOKEN and res.token is not None
    probe.send(m.Request(tid=9, to=net.address(node), command=m.PING, internal=True,
                         token=res.token).encode())
    [(data, _, _)] = probe.replies()
    ok = m.decode_message(data)
    assert isinstance(ok, m.Response) and ok.error == m.OK
    # The token goes stale after two rotations (10 drains each, 7.5 s).
    net.advance(16)
    probe.replies()
    probe.send(m.Request(tid=10, to=net.address(node), command=m.PING, internal=True,
                         token=res.token).encode())
    [(data, _, _)] = probe.replies()
    stale = m.decode_message(data)
    assert isinstance(stale, m.Response) and stale.error == m.INVALID_TOKEN


def test_a_forged_id_does_not_enter_the_table() -> None:
    net = sim_testnet(3)
    node = net.nodes[1]
    net.flush()
    probe = Probe(net, node)
    forged = node_id(("127.0.0.1", 12345))
    probe.send(m.Request(tid=11, to=net.address(node), command=m.PING, internal=True, id=forged).encode())
    probe.replies()
    assert not node.table.has(forged)
    assert node.stats.bad_ids == 1
    honest = node_id(OUTSIDER)
    probe.send(m.Request(tid=12, to=net.address(node), command=m.PING, internal=True, id=honest).encode())
    probe.replies()
    assert node.table.has(honest)


def test_malformed_datagrams_are_counted_and_dropped() -> None:
    net = sim_testnet(3)
    node = net.nodes[1]
    net.flush()
    probe = Probe(net, node)
    for data in (b"", b"\x03", b"\x03\x00", b"\xff" * 30, b"\x13\xff\xff", bytes(100)):
        probe.send(data)
    assert probe.replies() == []
    assert node.stats.dropped_malformed == 6


def test_down_hint_makes_the_receiver_check_the_node() -> None:
    net = sim_testnet(5)
    node = net.nodes[1]
    victim = net.nodes[3]
    assert victim.id is not None and node.table.has(victim.id)
    net.nodes.remove(victim)
    net.sockets = {a: s for a, s in net.sockets.items() if s[0] is not victim}
    net.flush()
    probe = Probe(net, node)
    probe.send(m.Request(tid=13, to=net.address(node), command=m.DOWN_HINT, internal=True,
                         value=encode_ipv4_address(net.address(victim))).encode())
    net.run_until(lambda: not node.table.has(victim.id or b""))


def test_congestion_window_defers_past_160_and_drains_later() -> None:
    net = sim_testnet(2)
    node = net.nodes[1]
    net.flush()
    for i in range(200):
        node.request((HOST, 30000 + i), m.PING, internal=True, now=net.now)
    sent = node.datagrams_to_send()
    assert len(sent) <= MAX_TOTAL_WINDOW
    assert node.stats.deferred == 200 - len(sent)
    node.handle_timer(net.now + 0.76)
    assert node.datagrams_to_send()


def test_query_with_commit_sends_one_more_request_to_each_closest_node() -> None:
    net = sim_testnet(30)
    origin = net.nodes[2]
    target = random.Random(3).randbytes(32)
    sent_before = origin.stats.requests_out
    plain = query_result(net, origin, origin.query(target, m.PING, internal=True, now=net.now))
    walk_cost = origin.stats.requests_out - sent_before
    sent_before = origin.stats.requests_out
    committed = query_result(net, origin, origin.query(target, m.PING, internal=True, commit=True,
                                                       now=net.now))
    assert committed.error is None
    assert [r.id for r in committed.closest] == [r.id for r in plain.closest]
    assert origin.stats.requests_out - sent_before == walk_cost + len(committed.closest)


def test_destroy_fails_pending_work() -> None:
    net = sim_testnet(3)
    node = net.nodes[1]
    rid = node.ping((HOST, 1), net.now)
    qid = node.find_node(bytes(32), net.now)
    node.destroy()
    events = [e for e in iter(node.next_event, None)]
    assert any(isinstance(e, RequestDone) and e.rid == rid and e.error == "DESTROYED" for e in events)
    assert any(isinstance(e, QueryDone) and e.qid == qid and e.error == "DESTROYED" for e in events)
    node.receive_datagram(b"\x03\x04\x00\x00\x7f\x00\x00\x01\x00\x00\x00", OUTSIDER, SERVER, net.now)
    assert node.datagrams_to_send() == []
