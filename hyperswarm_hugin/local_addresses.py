"""Which local IPv4 addresses to tell a peer about (hyperdht's ``localAddresses``).

A socket bound to one address advertises that address; one bound to 0.0.0.0 advertises
each interface's address (never 0.0.0.0 itself), asked of the kernel.
"""

from __future__ import annotations

import fcntl
import socket
import struct

from hyperswarm_hugin.protocol.encoding import Address

_SIOCGIFADDR = 0x8915
ANY = "0.0.0.0"
LOOPBACK = "127.0.0.1"


def interface_hosts() -> list[str]:
    """The IPv4 address of every interface that is not loopback (Linux), in index order."""
    hosts: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[:15])
            try:
                answer = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, request)
            except OSError:
                continue  # no IPv4 address on this interface
            host = socket.inet_ntoa(answer[20:24])
            if not host.startswith("127."):
                hosts.append(host)
    return hosts


def local_addresses(bound: Address) -> list[Address]:
    """Our addresses at the bound port: the bound host, or every interface's host for 0.0.0.0
    (loopback only if there is nothing else)."""
    host, port = bound
    if host != ANY:
        return [(host, port)]
    hosts = interface_hosts() or [LOOPBACK]
    return [(h, port) for h in hosts]
