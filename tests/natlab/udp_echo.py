"""A UDP mirror for checking the lab's NATs: the server tells every sender the address it saw.

    python -m tests.natlab.udp_echo serve --host H --ports N --timeout S
        {"event":"ready","ports":[...]}; answers each datagram with {"to":[host,port]}
    python -m tests.natlab.udp_echo probe --to H:P[,H:P...] --timeout S
        sends from ONE socket to each address; {"event":"seen","to":[...],"via":"H:P"} per answer,
        then {"event":"done"}
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import sys
import time


def out(**fields: object) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def serve(host: str, count: int, timeout: float) -> None:
    sel = selectors.DefaultSelector()
    ports = []
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((host, 0))
        sel.register(s, selectors.EVENT_READ)
        ports.append(s.getsockname()[1])
    sel.register(sys.stdin, selectors.EVENT_READ, "stdin")
    out(event="ready", ports=ports)
    end = time.monotonic() + timeout
    while (left := end - time.monotonic()) > 0:
        for key, _ in sel.select(left):
            if key.data == "stdin":
                if not sys.stdin.readline():  # stdin closed: the lab is stopping us
                    return
                continue
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            _, addr = sock.recvfrom(2048)
            sock.sendto(json.dumps({"to": list(addr)}).encode(), addr)


def probe(targets: list[tuple[str, int]], timeout: float) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 0))
    s.settimeout(timeout)
    for target in targets:
        s.sendto(b"?", target)
        try:
            data, addr = s.recvfrom(2048)
        except TimeoutError:
            out(event="lost", via=f"{target[0]}:{target[1]}")
            continue
        out(event="seen", to=json.loads(data)["to"], via=f"{addr[0]}:{addr[1]}")
    out(event="done")


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    srv = sub.add_parser("serve")
    srv.add_argument("--host", required=True)
    srv.add_argument("--ports", type=int, default=2)
    srv.add_argument("--timeout", type=float, default=30)
    prb = sub.add_parser("probe")
    prb.add_argument("--to", required=True)
    prb.add_argument("--timeout", type=float, default=5)
    args = parser.parse_args()
    if args.cmd == "serve":
        serve(args.host, args.ports, args.timeout)
    else:
        targets = [(a.rsplit(":", 1)[0], int(a.rsplit(":", 1)[1])) for a in args.to.split(",")]
        probe(targets, args.timeout)


if __name__ == "__main__":
    main()
