"""hyperswarm-hugin: a Python peer of the Hyperswarm network with Hugin's group barrier.

Keys (byte for byte what the Hugin apps and keypear make)::

    group = GroupKey.from_invite(invite)      # or GroupKey.from_seed(seed)
    me = KeyPair.from_seed(dht_seed)          # the DHT / Noise static key
    mid = group.sign(me.public_key)           # sent in every handshake
    group.verify(remote_public_key, mid)      # the barrier
    group.topic                               # the room topic the apps join
"""

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
