"""The NAT matrix with Python peers (issue 12): a Python server behind rA with a Node
hyperswarm-hugin client behind rB, a Node server with a Python client, and two Python peers,
each cell beside a Node<->Node run of the same cell in the same test (the reference).  A cell
that connects must connect with bytes both ways checked by sha256; random/random must fail as
Node fails (HOLEPUNCH_ABORTED, never a connection).  Times go to the report; bench/natlab.py
compares them (medians)."""

from __future__ import annotations

import logging

import pytest

from tests.natlab.cells import CellResult, UpgradeResult, run_cell, run_upgrade_cell
from tests.natlab.lab import INET_IP, LabProcess, NatLab

pytestmark = [pytest.mark.natlab, pytest.mark.timeout(900)]

log = logging.getLogger("natlab")

PAIRS = [("python", "node"), ("node", "python"), ("python", "python")]

# (server NAT, client NAT, bound on seconds).  A cell with a RANDOM side is a birthday search:
# one window is ~35 s of probes and misses now and then (Node's too), so its bound is two
# windows and hyperswarm's retry in between.
RANDOM_BOUND = 110.0
CONNECTING = [
    ("consistent", "consistent", 15.0),
    ("consistent", "random", RANDOM_BOUND),
    ("random", "consistent", RANDOM_BOUND),
]


def _report(record_property: pytest.RecordProperty, result: CellResult) -> None:
    record_property(f"{result.pair} {result.cell} seconds", result.seconds)
    log.info("natlab: %s %s connected=%s in %s s, errors %s", result.cell, result.pair, result.connected,
             result.seconds, result.errors)


@pytest.mark.parametrize(("server_nat", "client_nat", "bound"), CONNECTING,
                         ids=[f"{s}-{c}" for s, c, _ in CONNECTING])
def test_python_peers_connect_where_node_peers_do(node_lab: NatLab, server_nat: str, client_nat: str,
                                                  bound: float, record_property: pytest.RecordProperty) -> None:
    reference = run_cell(node_lab, "node", "node", server_nat, client_nat, deadline=bound)
    _report(record_property, reference)
    assert reference.connected and reference.sha_ok, reference.describe()
    for server_impl, client_impl in PAIRS:
        result = run_cell(node_lab, server_impl, client_impl, server_nat, client_nat, deadline=bound)
        _report(record_property, result)
        assert result.connected, result.describe()
        assert result.sha_ok is True, result.describe()
        assert result.server_connected, result.describe()


def test_fully_random_nat_against_a_consistent_one(node_lab: NatLab, record_property: pytest.RecordProperty) -> None:
    reference = run_cell(node_lab, "node", "node", "fully-random", "consistent", deadline=RANDOM_BOUND)
    _report(record_property, reference)
    assert reference.connected and reference.sha_ok, reference.describe()
    result = run_cell(node_lab, "python", "python", "fully-random", "consistent", deadline=RANDOM_BOUND)
    _report(record_property, result)
    assert result.connected and result.sha_ok is True, result.describe()


def test_two_random_nats_fail_as_in_node(node_lab: NatLab) -> None:
    """Both RANDOM: no strategy can work; each client attempt ends HOLEPUNCH_ABORTED (the swarm
    retries it).  Two failed attempts of each client are the window: no time is waited out."""
    reference = run_cell(node_lab, "node", "node", "random", "random", deadline=60, give_up_after_errors=2)
    assert not reference.connected and reference.error_code == "HOLEPUNCH_ABORTED", reference.describe()
    for server_impl, client_impl in PAIRS:
        result = run_cell(node_lab, server_impl, client_impl, "random", "random", deadline=60,
                          give_up_after_errors=2)
        assert not result.connected and not result.server_connected, result.describe()
        assert len(result.errors) >= 2, result.describe()
        assert set(result.errors) == {"HOLEPUNCH_ABORTED"}, result.describe()


def _start_relay(lab: NatLab, impl: str) -> tuple[LabProcess, str]:
    """A blind relay on the public net: Node's blind-relay server or ``run_node.py relay``."""
    bootstrap = ",".join(lab.bootstrap)
    if impl == "node":
        relay = lab.node("inet", "relay_server.js", "--bootstrap", bootstrap, "--host", INET_IP, "--timeout", "200")
    else:
        relay = lab.python("inet", "relay", "--bootstrap", bootstrap, "--host", INET_IP, "--timeout", "200")
    return relay, str(relay.wait_for("relay", 30)["publicKey"])


@pytest.mark.parametrize("relay_impl", ["node", "python"])
def test_two_random_nats_connect_through_a_blind_relay(node_lab: NatLab, relay_impl: str,
                                                       record_property: pytest.RecordProperty) -> None:
    """random/random cannot be punched; with ``--relay-through`` the peers pair through a relay
    (after the first HOLEPUNCH_ABORTED, or at once as our NAT is random) and the bytes go through
    it, still end to end encrypted with the group's barrier.  Upstream Node hyperswarm peers do
    the same through the same relay as the reference (hyperswarm-hugin's relay path is broken:
    docs/holepunch.md)."""
    relay, key = _start_relay(node_lab, relay_impl)
    try:
        reference = run_cell(node_lab, "node-upstream", "node-upstream", "random", "random", deadline=60,
                             relay_through=key)
        _report(record_property, reference)
        assert reference.connected and reference.sha_ok, reference.describe()
        result = run_cell(node_lab, "python", "python", "random", "random", deadline=60, relay_through=key)
        _report(record_property, result)
        if not result.connected:
            # Seen once in a full CI-like run: both pairing attempts timed out (15 s each) while
            # the same cell passes on its own.  One more pair of fresh peers; the first failure
            # stays in the log and the report.
            log.warning("natlab: relay cell failed once, running it again: %s", result.describe())
            record_property("first attempt", result.describe())
            result = run_cell(node_lab, "python", "python", "random", "random", deadline=60, relay_through=key)
            _report(record_property, result)
        assert result.connected and result.sha_ok is True, result.describe()
        # Both cells were paired by the relay (nothing else joins two random NATs).
        if relay_impl == "node":
            while relay.read(1.0) is not None:  # the pair lines printed so far
                pass
            assert sum(1 for line in relay.lines if line.get("event") == "pair") >= 4, relay.lines
        else:
            relay.close_stdin()  # SIGTERM: run_node.py relay prints its stats as it stops
            assert relay.wait_for("relay-stats", 10)["pairings_matched"] >= 2, relay.lines
    finally:
        node_lab.stop_process(relay, grace=3)


@pytest.mark.parametrize(("server_impl", "client_impl"), [("node", "python"), ("python", "python"),
                                                          ("python", "node")])
def test_an_open_client_reaches_a_server_behind_a_random_nat(node_lab: NatLab, server_impl: str, client_impl: str,
                                                             record_property: pytest.RecordProperty) -> None:
    """The client on the public net (o1, no NAT), the server behind a random NAT.  A Hugin
    client never claims to be open, so the server punches to it; a Python client advertises the
    address to punch to (hyperdht's open client advertises none: a Node client connects only on
    hyperswarm's retry, once its handshake says it is open and the server dials it)."""
    result = run_cell(node_lab, server_impl, client_impl, "random", "consistent", deadline=40, client_host="o1")
    _report(record_property, result)
    assert result.connected and result.sha_ok is True, result.describe()
    if client_impl == "python":
        assert result.errors == [], result.describe()  # the first attempt connects


@pytest.mark.parametrize("client_nat", ["consistent", "random"])
def test_a_python_server_on_the_public_net_is_reached_as_a_node_server_is(
        node_lab: NatLab, client_nat: str, record_property: pytest.RecordProperty) -> None:
    """The server on o1 (public, no NAT), a Node client behind rB: reached on the first attempt,
    as a Node server there is (it advertises where its server socket is, never its client
    socket's port or 0.0.0.0)."""
    reference = run_cell(node_lab, "node", "node", "consistent", client_nat, deadline=30, server_host="o1")
    _report(record_property, reference)
    assert reference.connected and reference.sha_ok, reference.describe()
    result = run_cell(node_lab, "python", "node", "consistent", client_nat, deadline=30, server_host="o1")
    _report(record_property, result)
    assert result.connected and result.sha_ok is True, result.describe()
    assert result.errors == [], result.describe()  # no HOLEPUNCH_ABORTED before it connected
    assert result.seconds is not None and result.seconds < 5, result.describe()


@pytest.mark.parametrize("server_impl", ["node", "python"])
def test_a_server_behind_a_nat_that_forgets_quickly_stays_reachable(node_lab: NatLab, server_impl: str) -> None:
    """rA forgets a UDP mapping after 5 s without traffic (10 s once answered).  The server
    announced through rA long before the client comes: its relays reach it only if it kept those
    mappings warm (hyperdht's announcer pings its relays every 3 s).  The client connects on its
    first attempt, no PEER_CONNECTION_FAILED."""
    node_lab.set_udp_timeouts("rA", 5, 10)
    try:
        result = run_cell(node_lab, server_impl, "node", "consistent", "consistent", deadline=30,
                          client_delay=25.0)
    finally:
        node_lab.set_udp_timeouts("rA", 30, 120)
    assert result.connected and result.sha_ok is True, result.describe()
    assert result.errors == [], result.describe()


def _check_upgrade(result: UpgradeResult) -> None:
    assert result.relayed, result.describe()  # both peers' first connection went through the relay
    assert result.dropped > 0, result.describe()  # the gate held probes back until then
    assert result.direct, result.describe()  # then both moved to the punched path (routers' addresses)
    assert result.sha_ok is True, result.describe()
    # The echo was still running when the stream moved: bytes crossed the switch both ways.
    assert result.echoed_at is not None and result.direct_at is not None, result.describe()
    assert result.echoed_at > result.direct_at, result.describe()


def test_a_relayed_connection_goes_direct_when_the_probes_get_through(
        node_lab: NatLab, record_property: pytest.RecordProperty) -> None:
    """consistent/consistent with a blind relay, rA holding the server's probes back: the first
    punch fails, hyperswarm's retry pairs through the relay while punching again, and once both
    peers print a relayed connection the probes pass, the punch succeeds and the stream moves to
    the direct path behind real NATs (hyperdht 6.34).  Upstream Node hyperswarm peers (hyperdht
    6.34) through the same relay are the reference."""
    relay, key = _start_relay(node_lab, "node")
    try:
        for server_impl, client_impl in (("node-upstream", "node-upstream"), ("python", "python")):
            result = run_upgrade_cell(node_lab, server_impl, client_impl, key, INET_IP)
            log.info("natlab: %s", result.describe())
            for name in ("relayed_at", "released_at", "direct_at", "echoed_at", "dropped"):
                record_property(f"{result.pair} relay-then-direct {name}", getattr(result, name))
            _check_upgrade(result)
    finally:
        node_lab.stop_process(relay, grace=3)
