"""The lab with a public DHT made of Python nodes (run_node.py testnet): Node hyperswarm-hugin
peers behind NATs must still find each other and punch through, so our DHT nodes store the
announcement and route PEER_HANDSHAKE and PEER_HOLEPUNCH between them (hyperdht.md §8, §9.4);
and a Python swarm peer starts inside the lab and classifies its NAT (its NAT cells belong to
the holepunching work; bench/natlab.py --pairs runs them)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from hyperswarm_hugin import GroupKey
from tests.natlab.cells import run_cell, start_peer
from tests.natlab.conftest import require_lab
from tests.natlab.lab import NatLab

pytestmark = [pytest.mark.natlab, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def python_lab() -> Iterator[NatLab]:
    require_lab()
    with NatLab(dht="python", dht_size=10, timeout=600) as lab:
        yield lab


@pytest.mark.parametrize(("server_nat", "client_nat", "bound"), [("consistent", "consistent", 10.0),
                                                                  ("consistent", "random", 60.0)])
def test_node_peers_punch_through_a_python_dht(python_lab: NatLab, server_nat: str, client_nat: str,
                                               bound: float) -> None:
    assert python_lab.dht_process is not None and "run_node.py" in " ".join(python_lab.dht_process.argv)
    assert len(python_lab.dht_nodes) == 10
    result = run_cell(python_lab, "node", "node", server_nat, client_nat, deadline=bound, trace=True)
    assert result.connected and result.sha_ok is True, result.describe()
    # The client's round trips through our relays: the handshake and the holepunch rounds answered.
    trips = [line for line in result.client_lines if line["event"] == "trace"]
    answered = {line["name"] for line in trips if line["err"] is None}
    assert answered == {"peerHandshake", "peerHolepunch"}, result.describe()
    assert all(line["ms"] < 1000 for line in trips if line["err"] is None), trips


@pytest.mark.parametrize(("server_nat", "client_nat"), [("consistent", "consistent"), ("random", "consistent")])
def test_python_peers_punch_through_a_python_dht(python_lab: NatLab, server_nat: str, client_nat: str) -> None:
    """An all-Python network: our DHT nodes route our peers' handshakes and holepunch rounds."""
    result = run_cell(python_lab, "python", "python", server_nat, client_nat, deadline=110)
    assert result.connected and result.sha_ok is True, result.describe()


@pytest.mark.parametrize(("nat", "expected"), [("consistent", "consistent"), ("random", "random"),
                                                ("fully-random", "random")])
def test_python_peer_starts_inside_the_lab_and_sees_its_nat(python_lab: NatLab, nat: str, expected: str) -> None:
    """run_cell's python implementation: run_node.py peer bound to 0.0.0.0 in hA announces
    through the Python DHT and says ready, with the NAT class its samples give behind rA."""
    python_lab.set_nat("rA", nat)
    seed = os.urandom(32)
    peer = start_peer(python_lab, "hA", "python", role="server", mode="echo", nbytes=0, group_seed=seed,
                      topic=GroupKey.from_seed(seed).topic, timeout=40)
    try:
        ready = peer.wait_for("ready", 30)
    finally:
        python_lab.stop_process(peer)
    assert peer.proc.returncode is not None
    assert ready["topic"] == GroupKey.from_seed(seed).topic.hex(), ready
    assert ready["firewalled"] is True and ready["nat"] == expected, ready
    assert ready["publicAddress"].startswith(python_lab.ip["rA"] + ":"), ready
