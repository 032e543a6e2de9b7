"""A UDP packet recorder for one lab host's interface (bench/natlab.py --split): every IPv4 UDP
datagram the host sends or receives on ``--iface``, with the kernel's receive timestamp
(CLOCK_REALTIME, ns), written as one JSON line each to ``--out``:

    {"t": NS, "dir": "out"|"in", "src": "H:P", "dst": "H:P", "ttl": N, "len": UDP_PAYLOAD_BYTES,
     "head": HEX}   (head: the payload's first 80 bytes; only for datagrams over 1 byte)

    python -m tests.natlab.capture --iface eth0 --out FILE --timeout S

Prints {"event": "ready"} once the socket is bound, {"event": "done", "packets": N} when stdin
closes or ``--timeout`` s pass, then exits.  Needs root (AF_PACKET) inside the namespace.
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003  # outgoing packets reach only ETH_P_ALL taps
ETH_P_IP = 0x0800
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
PACKET_OUTGOING = 4
HEAD = 80


def out(**fields: object) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def parse(data: bytes) -> tuple[str, int, str, int, int, bytes] | None:
    """(src host, src port, dst host, dst port, ttl, udp payload) of an IPv4 UDP packet."""
    if len(data) < 28 or data[0] >> 4 != 4 or data[9] != 17:
        return None
    ihl = (data[0] & 0x0F) * 4
    ttl = data[8]
    src = socket.inet_ntoa(data[12:16])
    dst = socket.inet_ntoa(data[16:20])
    sport, dport, length = struct.unpack("!HHH", data[ihl:ihl + 6])
    return src, sport, dst, dport, ttl, data[ihl + 8:ihl + length]


def record(iface: str, path: str, timeout: float) -> None:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.bind((iface, ETH_P_ALL))
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ, "packet")
    sel.register(sys.stdin, selectors.EVENT_READ, "stdin")
    count = 0
    out(event="ready")
    end = time.monotonic() + timeout
    with open(path, "w") as sink:
        running = True
        while running and (left := end - time.monotonic()) > 0:
            for key, _ in sel.select(left):
                if key.data == "stdin":
                    if not sys.stdin.readline():
                        running = False
                    continue
                while True:
                    try:
                        data, ancillary, _, address = sock.recvmsg(2048, 64)
                    except BlockingIOError:
                        break
                    found = parse(data) if address[1] == ETH_P_IP else None
                    if found is None:
                        continue
                    stamp = time.time_ns()
                    for level, kind, raw in ancillary:
                        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= 16:
                            seconds, nanos = struct.unpack("qq", raw[:16])
                            stamp = seconds * 1_000_000_000 + nanos
                    src, sport, dst, dport, ttl, payload = found
                    line = {"t": stamp, "dir": "out" if address[2] == PACKET_OUTGOING else "in",
                            "src": f"{src}:{sport}", "dst": f"{dst}:{dport}", "ttl": ttl, "len": len(payload)}
                    if len(payload) > 1:
                        line["head"] = payload[:HEAD].hex()
                    sink.write(json.dumps(line) + "\n")
                    count += 1
    out(event="done", packets=count)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iface", default="eth0")
    parser.add_argument("--out", required=True)
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    record(args.iface, args.out, args.timeout)


if __name__ == "__main__":
    main()
