"""Python peers in the NAT lab, consistent/consistent only (round 0, fast mode): the cells with a
RANDOM side are measured by bench/natlab.py while the holepunching work settles; they all
connected 3/3 when this file was written."""

from __future__ import annotations

import pytest

from tests.natlab.cells import run_cell
from tests.natlab.lab import NatLab

pytestmark = [pytest.mark.natlab, pytest.mark.timeout(60)]

PAIRS = [("python", "node"), ("node", "python"), ("python", "python")]


@pytest.mark.parametrize(("server", "client"), PAIRS, ids=[f"{s}-server-{c}-client" for s, c in PAIRS])
def test_python_peer_punches_through_two_consistent_nats(node_lab: NatLab, server: str, client: str) -> None:
    result = run_cell(node_lab, server, client, "consistent", "consistent", deadline=20)
    assert result.connected, result.describe()
    if "node" in (server, client):
        assert result.sha_ok is True, result.describe()
    assert result.seconds is not None and result.seconds < 10, result.describe()
