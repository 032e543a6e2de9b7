"""hyperdht's payloads and commands on top of dht-rpc."""
