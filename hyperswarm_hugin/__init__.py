"""hyperswarm-hugin: a Python peer of the Hyperswarm network with Hugin's group barrier."""

from hyperswarm_hugin.dht import DHT, Testnet

__all__ = ["DHT", "Testnet"]
