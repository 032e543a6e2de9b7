"""The dht-rpc layer: messages, node ids, routing table, queries and the node state machine."""
