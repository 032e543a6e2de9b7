"""What the swarm knows about one remote peer: hyperswarm's PeerInfo (lib/peer-info.js)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyperswarm_hugin.actors.messages import SetReconnect
from hyperswarm_hugin.protocol.encoding import Address
from hyperswarm_hugin.protocol.swarm.peer_state import PeerState

if TYPE_CHECKING:
    from hyperswarm_hugin.swarm_host import SwarmHost


class PeerInfo:
    """What the swarm knows about one remote peer (hyperswarm's PeerInfo).  Read-only, except
    :meth:`ban` and :meth:`reconnect`."""

    def __init__(self, swarm: SwarmHost, public_key: bytes) -> None:
        self._swarm = swarm
        self.public_key = public_key
        self._state = PeerState(public_key)

    @property
    def topics(self) -> list[bytes]:
        """The topics this peer was found on."""
        return list(self._state.topics)

    @property
    def prioritized(self) -> bool:
        """Its priority is normal or higher (hyperswarm lowers it after repeated short connections)."""
        return self._state.prioritized

    @property
    def banned(self) -> bool:
        """Never dialed; its handshakes are refused."""
        return self._state.banned

    @property
    def explicit(self) -> bool:
        """Joined with ``join_peer``."""
        return self._state.explicit

    @property
    def attempts(self) -> int:
        """Disconnections (failed dials included) since the last connection that lasted."""
        return self._state.attempts

    @property
    def client(self) -> bool:
        """True when our connection to this peer is one we dialed."""
        return self._state.client

    @property
    def server(self) -> bool:
        """True when our connection to this peer is one it dialed."""
        return not self._state.client

    @property
    def relay_addresses(self) -> list[Address]:
        """Where its announce said it can be reached through."""
        return list(self._state.relay_addresses)

    def ban(self, banned: bool = True) -> None:
        """Never connect to this peer again (``False`` lifts the ban); its handshakes are refused."""
        self._swarm._ban(self.public_key, bool(banned))

    def reconnect(self, reconnecting: bool) -> None:
        """Whether the swarm retries this peer after its connection closes."""
        self._swarm._tell(SetReconnect(self.public_key, bool(reconnecting), self._swarm._now()))

    def __repr__(self) -> str:
        return f"PeerInfo({self.public_key.hex()[:16]}…, attempts={self.attempts}, banned={self.banned})"
