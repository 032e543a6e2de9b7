"""The NAT lab: network namespaces, NAT routers and a public DHT on one machine (holepunch.md §5)."""
