"""Which path a client's stream takes once the handshake is done (connect.js ``holepunch``'s
first half), as a pure function of what the handshake told us.

``SERVER_ITSELF``: the node that answered was the server (no relay in between).
``SERVER_ADDRESS``: the server is open, or not holepunchable: its first public address (or the
address the relay saw).  ``PASSIVE``: we are open, the server connects to us.  ``LAN``: we are
behind the server's public host, its local address next to ours.  ``PUNCH``: NAT holepunching
(and a blind relay, if one was asked for).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from hyperswarm_hugin.protocol.encoding import Address
from hyperswarm_hugin.protocol.hyperdht.constants import Firewall
from hyperswarm_hugin.protocol.hyperdht.holepunch import first_public_address, is_private, match_address


class PathKind(Enum):
    SERVER_ITSELF = "server-itself"
    SERVER_ADDRESS = "server-address"
    PASSIVE = "passive"
    LAN = "lan"
    PUNCH = "punch"


@dataclass(frozen=True, slots=True)
class Path:
    kind: PathKind
    address: Address | None = None  # where the stream goes (None: punching decides, or the server)


def choose_path(*, relayed: bool, relay: Address, server_address: Address, client_address: Address,
                remote_firewall: int, holepunchable: bool, remote_addresses: list[Address],
                we_are_open: bool, local_connection: bool, local_hosts: list[str]) -> Path:
    """The path for our stream.  ``relay`` answered the handshake; ``server_address`` is the
    server as that relay saw it, ``client_address`` us as it saw us; ``remote_addresses`` the
    server's ``addresses4``; ``local_hosts`` our interfaces' hosts."""
    if not relayed:
        return Path(PathKind.SERVER_ITSELF, relay)
    if remote_firewall == Firewall.OPEN or not holepunchable:
        return Path(PathKind.SERVER_ADDRESS, first_public_address(remote_addresses, server_address))
    if we_are_open:
        return Path(PathKind.PASSIVE)
    if local_connection and client_address[0] == server_address[0]:
        private = [a for a in remote_addresses if is_private(a[0])]
        if private:
            return Path(PathKind.LAN, match_address(local_hosts, private) or private[0])
    return Path(PathKind.PUNCH)
