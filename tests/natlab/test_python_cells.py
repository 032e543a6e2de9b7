"""The NAT matrix with Python peers (issue 12): a Python server behind rA with a Node
hyperswarm-hugin client behind rB, a Node server with a Python client, and two Python peers,
each cell beside a Node<->Node run of the same cell in the same test (the reference).  A cell
that connects must connect with bytes both ways checked by sha256; random/random must fail as
Node fails (HOLEPUNCH_ABORTED, never a connection).  Times go to the report; bench/natlab.py
compares them (medians)."""

from __future__ import annotations

import logging

import pytest

from tests.natlab.cells import CellResult, run_cell
from tests.natlab.lab import NatLab

pytestmark = [pytest.mark.natlab, pytest.mark.timeout(420)]

log = logging.getLogger("natlab")

PAIRS = [("python", "node"), ("node", "python"), ("python", "python")]

# (server NAT, client NAT, bound on seconds).  A cell with a RANDOM side is a birthday search
# (one full window is ~35 s of probes), so its bound is a window and a retry.
CONNECTING = [
    ("consistent", "consistent", 15.0),
    ("consistent", "random", 80.0),
    ("random", "consistent", 80.0),
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
    reference = run_cell(node_lab, "node", "node", "fully-random", "consistent", deadline=80)
    _report(record_property, reference)
    assert reference.connected and reference.sha_ok, reference.describe()
    result = run_cell(node_lab, "python", "python", "fully-random", "consistent", deadline=80)
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
