"""The client's path choice after the handshake (connect.js ``holepunch``), case by case."""

from __future__ import annotations

from typing import Any

import pytest

from hyperswarm_hugin.protocol.hyperdht.constants import Firewall
from hyperswarm_hugin.protocol.hyperdht.paths import Path, PathKind, choose_path

RELAY = ("203.0.113.7", 49737)           # a DHT node
SERVER_PUBLIC = ("198.18.5.5", 40000)    # the server as the relay saw it
US_PUBLIC = ("198.18.9.9", 41000)        # us as the relay saw us


def path(**changes: Any) -> Path:
    case: dict[str, Any] = dict(
        relayed=True, relay=RELAY, server_address=SERVER_PUBLIC, client_address=US_PUBLIC,
        remote_firewall=Firewall.UNKNOWN, holepunchable=True, remote_addresses=[], we_are_open=False,
        local_connection=True, local_hosts=["192.168.1.20"],
    )
    case.update(changes)
    return choose_path(**case)


def test_the_node_that_answered_was_the_server() -> None:
    assert path(relayed=False) == Path(PathKind.SERVER_ITSELF, RELAY)


@pytest.mark.parametrize("changes", [{"remote_firewall": Firewall.OPEN}, {"holepunchable": False}])
def test_an_open_or_unpunchable_server_is_dialled_at_its_first_public_address(changes: dict[str, Any]) -> None:
    addresses = [("10.0.0.5", 1), ("127.0.0.1", 2), ("8.8.4.4", 3), ("9.9.9.9", 4)]
    assert path(remote_addresses=addresses, **changes) == Path(PathKind.SERVER_ADDRESS, ("8.8.4.4", 3))
    # only bogons: where the relay saw it
    assert path(remote_addresses=addresses[:2], **changes) == Path(PathKind.SERVER_ADDRESS, SERVER_PUBLIC)


def test_an_open_client_waits_for_the_server() -> None:
    assert path(we_are_open=True) == Path(PathKind.PASSIVE)


def test_behind_the_servers_public_host_the_matching_local_address_is_used() -> None:
    same_host = (SERVER_PUBLIC[0], 41000)
    addresses = [("172.17.0.1", 5), ("192.168.1.30", 6)]
    assert path(client_address=same_host, remote_addresses=addresses) == Path(PathKind.LAN, ("192.168.1.30", 6))
    # no match on any segment: the first private address, as connect.js
    assert path(client_address=same_host, remote_addresses=[("10.1.1.1", 7)],
                local_hosts=["192.168.1.20"]) == Path(PathKind.LAN, ("10.1.1.1", 7))
    # not asked to: punch instead
    assert path(client_address=same_host, remote_addresses=addresses, local_connection=False).kind is PathKind.PUNCH
    # no private address to try: punch
    assert path(client_address=same_host, remote_addresses=[("8.8.4.4", 3)]).kind is PathKind.PUNCH


def test_otherwise_we_punch() -> None:
    assert path().kind is PathKind.PUNCH
    assert path(remote_firewall=Firewall.RANDOM).kind is PathKind.PUNCH
