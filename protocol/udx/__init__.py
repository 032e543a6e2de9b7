"""UDX: the reliable, congestion-controlled stream under every hyperdht connection."""
