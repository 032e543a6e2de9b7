#!/usr/bin/env python3
"""Stream benchmark: bulk throughput and ping-pong latency of secret-stream over UDX.

Pairs, each end in its own process: Python↔Python, Python→Node, Node→Python, Node↔Node
(Node = udx-native + @hyperswarm/secret-stream, tests/interop/node/udx_peer.js; Python =
bench/stream_peer.py).  Throughput: one side writes --mebibytes (default 256) in 64 KiB
messages, the other reads; the receiver times first byte to end and both sides' sha256 must
match.  Ping-pong: --count (default 10,000) round trips of a 32-byte message.

    .venv/bin/python bench/stream.py [--mebibytes 256] [--count 10000]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hyperswarm_hugin.protocol.hugin import KeyPair  # noqa: E402
from hyperswarm_hugin.protocol.noise import HandshakeResult, NoiseHandshake  # noqa: E402
from tests.lines import JsonLineReader  # noqa: E402


def handshake_pair() -> tuple[HandshakeResult, HandshakeResult]:
    a, b = KeyPair.random(), KeyPair.random()
    ini = NoiseHandshake(a, initiator=True, remote_public_key=b.public_key)
    res = NoiseHandshake(b, initiator=False)
    res.recv(ini.send(b""))
    ini.recv(res.send(b""))
    assert ini.result is not None and res.result is not None
    return ini.result, res.result


class Peer:
    def __init__(self, impl: str, *args: str) -> None:
        if impl == "node":
            node = shutil.which("node")
            assert node is not None
            argv = [node, str(ROOT / "tests" / "interop" / "node" / "udx_peer.js"), *args]
        else:
            argv = [sys.executable, str(ROOT / "bench" / "stream_peer.py"), *args]
        self.proc = subprocess.Popen(argv, cwd=ROOT / "tests" / "interop", stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self.proc.stdout is not None
        self.lines = JsonLineReader(self.proc.stdout)

    def wait(self, event: str, deadline: float = 600.0) -> dict[str, Any]:
        while True:
            found = self.lines.read(deadline)
            if found is None:
                raise RuntimeError(f"peer ended without {event!r}")
            if found.get("event") == event:
                return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.lines.close()


def run_pair(sender_impl: str, receiver_impl: str, sender_mode: str, receiver_mode: str,
             extra: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    ini, res = handshake_pair()
    sender_id, receiver_id = random.getrandbits(32), random.getrandbits(32)
    common = ["--timeout", "900"]
    receiver = Peer(receiver_impl, "--id", str(receiver_id), "--remote-id", str(sender_id), "--wait-first", "1",
                    "--initiator", "0", "--tx", res.tx.hex(), "--rx", res.rx.hex(), "--hash", res.hash.hex(),
                    "--mode", receiver_mode, *common)
    sender = None
    try:
        port = receiver.wait("ready", 60)["port"]
        sender = Peer(sender_impl, "--id", str(sender_id), "--remote-id", str(receiver_id), "--remote-port",
                      str(port), "--initiator", "1", "--tx", ini.tx.hex(), "--rx", ini.rx.hex(), "--hash",
                      ini.hash.hex(), "--mode", sender_mode, *extra, *common)
        if sender_mode == "source":
            sent = sender.wait("sent")
            done = receiver.wait("done")
            if sent["sha256"] != done["sha256"] or sent["bytes"] != done["bytes"]:
                raise RuntimeError(f"{sender_impl}->{receiver_impl}: the bytes differ")
            return sent, done
        pings = sender.wait("pings")
        return pings, pings
    finally:
        for peer in (sender, receiver):
            if peer is not None:
                peer.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mebibytes", type=int, default=256)
    parser.add_argument("--count", type=int, default=10000)
    args = parser.parse_args()
    if shutil.which("node") is None or not (ROOT / "tests" / "interop" / "node_modules").is_dir():
        print("bench/stream.py needs node and tests/interop/node_modules (.ci/install)", file=sys.stderr)
        return 1
    total = args.mebibytes * 1024 * 1024
    pairs = [("python", "python"), ("python", "node"), ("node", "python"), ("node", "node")]
    rows = []
    for sender, receiver in pairs:
        _, done = run_pair(sender, receiver, "source", "sink", ["--bytes", str(total)])
        pings, _ = run_pair(sender, receiver, "ping", "echo", ["--count", str(args.count)])
        rows.append((sender, receiver, done["bytes"] / done["seconds"] / 1e6, pings["median_ms"], pings["p99_ms"]))
    reference = rows[-1]
    print(f"secret-stream over UDX on loopback: {args.mebibytes} MiB one way; {args.count} round trips of 32 B")
    print()
    header = (f"{'sender -> receiver':<20} {'MB/s':>8} {'x Node':>7} {'rtt p50 ms':>11} {'x Node':>7} "
              f"{'rtt p99 ms':>11} {'x Node':>7}")
    print(header)
    print("-" * len(header))
    for sender, receiver, mbps, p50, p99 in rows:
        print(f"{sender + ' -> ' + receiver:<20} {mbps:>8.1f} {mbps / reference[2]:>7.2f} {p50:>11.3f} "
              f"{p50 / reference[3]:>7.2f} {p99:>11.3f} {p99 / reference[4]:>7.2f}")
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    print()
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, Node {node}; each end in its "
          "own process; ratios against node -> node.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
