"""hyperswarm-hugin: a Python peer of the Hyperswarm network with Hugin's group barrier.

Keys (byte for byte what the Hugin apps and keypear make)::

    group = GroupKey.from_invite(invite)      # or GroupKey.from_seed(seed)
    me = KeyPair.from_seed(dht_seed)          # the DHT / Noise static key
    mid = group.sign(me.public_key)           # sent in every handshake
    group.verify(remote_public_key, mid)      # the barrier
    group.topic                               # the room topic the apps join

The names below load with the first use of one of them (PEP 562), so a program that imports
only a submodule (``hyperswarm_hugin.protocol...``, the command line's ``dht`` or ``status``)
does not load the swarm.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hyperswarm_hugin.connection import Connection, ConnectionClosed
    from hyperswarm_hugin.dht import DHT, DHTError, Testnet
    from hyperswarm_hugin.errors import ConnectError, HolepunchError, ServerRefused
    from hyperswarm_hugin.peer_connect import Server
    from hyperswarm_hugin.protocol.hugin import GroupKey, KeyPair, fill32
    from hyperswarm_hugin.swarm import Hyperswarm, PeerDiscovery, PeerInfo, SwarmDestroyed, TopicDiscovery

__all__ = [
    "DHT",
    "ConnectError",
    "Connection",
    "ConnectionClosed",
    "DHTError",
    "GroupKey",
    "HolepunchError",
    "Hyperswarm",
    "KeyPair",
    "PeerDiscovery",
    "PeerInfo",
    "Server",
    "ServerRefused",
    "SwarmDestroyed",
    "Testnet",
    "TopicDiscovery",
    "fill32",
]

# Each public name and the module that defines it.
_HOME = {
    "Connection": "connection", "ConnectionClosed": "connection",
    "DHT": "dht", "DHTError": "dht", "Testnet": "dht",
    "ConnectError": "errors", "HolepunchError": "errors", "ServerRefused": "errors",
    "Server": "peer_connect",
    "GroupKey": "protocol.hugin", "KeyPair": "protocol.hugin", "fill32": "protocol.hugin",
    "Hyperswarm": "swarm", "PeerDiscovery": "swarm", "PeerInfo": "swarm", "SwarmDestroyed": "swarm",
    "TopicDiscovery": "swarm",
}

if not TYPE_CHECKING:  # type checkers see the imports above, and flag a misspelt name

    def __getattr__(name: str) -> Any:
        home = _HOME.get(name)
        if home is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
        globals()[name] = value  # later look-ups find it without this function
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
