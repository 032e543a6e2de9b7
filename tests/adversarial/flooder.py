"""An attacker in a process of its own: floods a node with hand-built datagrams.

Run as ``python -m tests.adversarial.flooder '<json options>'``.  It prints JSON lines:
``{"event": "started"}`` once the first datagram is out, then ``{"event": "done", ...}`` with
what it sent.  Kinds (``kind``):

- ``handshakes``: PEER_HANDSHAKEs at ``server_key``, ``mode`` "direct" (FROM_CLIENT) or
  "relayed" (FROM_RELAY naming a random 127.x address), ``mid`` "valid" (signed by
  ``group_seed``: these are half-open connections, no UDX packet ever follows), "bad" (another
  group's), or "garbage" (random Noise bytes), from ``hosts`` source hosts 127.0.2.x;
- ``udx``: a member's relayed handshake, then UDX DATA packets at the server's stream, far
  ahead of the ack, ahead but within 8192, or duplicates of a few sequence numbers (``order``
  "far-ahead" / "in-window" / "duplicate");
- ``random``: random and mutated dht-rpc datagrams;
- ``fields``: every message type truncated at every byte and with oversized fields.

Only 127.0.0.0/8 addresses are used.
"""

from __future__ import annotations

import json
import random
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any

from hyperswarm_hugin.protocol.dht import messages as m
from hyperswarm_hugin.protocol.encoding import Address, encode_ipv4_address
from hyperswarm_hugin.protocol.hugin import GroupKey, KeyPair
from hyperswarm_hugin.protocol.hyperdht import messages as h
from hyperswarm_hugin.protocol.hyperdht.constants import Firewall
from hyperswarm_hugin.protocol.hyperdht.payloads import NoisePayload, UdxInfo
from hyperswarm_hugin.protocol.hyperdht.signing import blake2b_256
from hyperswarm_hugin.protocol.noise import NoiseHandshake
from hyperswarm_hugin.protocol.udx.packet import DATA, DEFAULT_RWND, pack_header
from tests.mutation import mutate as mutate_bytes

OTHER_GROUP = GroupKey.from_seed(b"a group the attacker made up")


def say(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def handshake_value(server_key: bytes, client: KeyPair, mid: bytes | None, mode: str,
                    rng: random.Random, noise: bytes | None = None) -> bytes:
    if noise is None:
        payload = NoisePayload(firewall=Firewall.UNKNOWN, udx=UdxInfo(rng.getrandbits(32)),
                               secret_stream_version=1, mid=mid)
        noise = NoiseHandshake(client, initiator=True, remote_public_key=server_key).send(payload.encode())
    if mode == "direct":
        return h.Handshake(h.FROM_CLIENT, noise).encode()
    claimed = (f"127.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}", rng.randrange(1, 65536))
    return h.Handshake(h.FROM_RELAY, noise, peer_address=claimed).encode()


def handshakes(opts: dict[str, Any], to: Address, rng: random.Random) -> Iterator[bytes]:
    server_key = bytes.fromhex(opts["server_key"])
    group = GroupKey.from_seed(bytes.fromhex(opts["group_seed"]))
    target = blake2b_256(server_key)
    for i in range(opts["count"]):
        client = KeyPair.from_seed(rng.randbytes(32))
        kind = opts["mid"]
        mid = group.sign(client.public_key) if kind == "valid" else OTHER_GROUP.sign(client.public_key)
        noise = rng.randbytes(rng.randrange(1, 200)) if kind == "garbage" else None
        value = handshake_value(server_key, client, mid, opts["mode"], rng, noise)
        yield m.Request(tid=i & 0xFFFF, to=to, command=h.PEER_HANDSHAKE, target=target, value=value).encode()


def seed_datagrams(to: Address, rng: random.Random) -> list[bytes]:
    """One well-formed datagram of every message type (dht-rpc and hyperdht)."""
    target = rng.randbytes(32)
    key = KeyPair.from_seed(rng.randbytes(32))
    record = h.PeerRecord(key.public_key, [("127.0.0.1", 9), ("127.0.0.2", 10)])
    noise = rng.randbytes(96)

    def req(command: int, value: bytes | None = None, internal: bool = False, token: bool = False) -> bytes:
        return m.Request(tid=rng.randrange(65536), to=to, command=command, internal=internal, target=target,
                         token=rng.randbytes(32) if token else None, value=value).encode()

    return [
        m.Request(tid=1, to=to, command=m.PING, internal=True).encode(),
        req(m.FIND_NODE, internal=True),
        m.Request(tid=3, to=to, command=m.DOWN_HINT, internal=True,
                  value=encode_ipv4_address(("127.0.0.1", 9))).encode(),
        m.Response(tid=5, to=to, id=rng.randbytes(32), token=rng.randbytes(32),
                   closer_nodes=[to, ("127.0.0.1", 7)], value=b"x").encode(),
        req(h.PEER_HANDSHAKE, h.Handshake(h.FROM_CLIENT, noise).encode()),
        req(h.PEER_HANDSHAKE, h.Handshake(h.FROM_RELAY, noise, peer_address=("127.0.0.3", 4)).encode()),
        req(h.PEER_HANDSHAKE, h.Handshake(h.FROM_SECOND_RELAY, noise, ("127.0.0.3", 4), ("127.0.0.4", 5)).encode()),
        req(h.PEER_HOLEPUNCH, h.Holepunch(h.FROM_CLIENT, 1, rng.randbytes(60)).encode()),
        req(h.PEER_HOLEPUNCH, h.Holepunch(h.FROM_RELAY, 2, rng.randbytes(60), ("127.0.0.3", 4)).encode()),
        req(h.FIND_PEER),
        req(h.LOOKUP),
        req(h.ANNOUNCE, h.Announce(peer=record, signature=rng.randbytes(64)).encode(), token=True),
        req(h.UNANNOUNCE, h.Announce(peer=record, signature=rng.randbytes(64)).encode(), token=True),
        req(h.MUTABLE_PUT, h.MutablePut(key.public_key, 3, b"value", rng.randbytes(64)).encode(), token=True),
        req(h.MUTABLE_GET, b"\x00"),
        req(h.IMMUTABLE_PUT, b"an immutable value", token=True),
        req(h.IMMUTABLE_GET),
    ]


def oversized(to: Address, rng: random.Random) -> list[bytes]:
    """Every message type with a field far larger than it should be (up to a 60 kB datagram)."""
    big = rng.randbytes(60_000)
    target = rng.randbytes(32)
    key = KeyPair.from_seed(rng.randbytes(32))
    many = [(f"127.0.{i // 250}.{i % 250 + 1}", i + 1) for i in range(5000)]
    values = [
        h.Handshake(h.FROM_CLIENT, big).encode(),
        h.Handshake(h.FROM_RELAY, big[:30_000], peer_address=("127.0.0.3", 4)).encode(),
        h.Holepunch(h.FROM_CLIENT, 2**53 - 1, big).encode(),
        h.Announce(peer=h.PeerRecord(key.public_key, many), signature=rng.randbytes(64)).encode(),
        h.MutablePut(key.public_key, 2**53 - 1, big, rng.randbytes(64)).encode(),
        big,
    ]
    out = [m.Request(tid=rng.randrange(65536), to=to, command=command, target=target, value=value,
                     token=rng.randbytes(32)).encode()
           for command in range(10) for value in values]
    out.append(m.Response(tid=9, to=to, id=rng.randbytes(32), closer_nodes=many, value=big[:20_000]).encode())
    out.append(m.Request(tid=10, to=to, command=m.FIND_NODE, internal=True, target=target, value=big).encode())
    return out


def fields(opts: dict[str, Any], to: Address, rng: random.Random) -> Iterator[bytes]:
    seeds = seed_datagrams(to, rng)
    for seed in seeds:  # truncated at every byte
        for end in range(len(seed)):
            yield seed[:end]
    yield from oversized(to, rng)
    if opts.get("server_key"):  # a member's Noise payload truncated at every byte, inside a valid handshake
        server_key = bytes.fromhex(opts["server_key"])
        group = GroupKey.from_seed(bytes.fromhex(opts["group_seed"]))
        client = KeyPair.from_seed(rng.randbytes(32))
        payload = NoisePayload(udx=UdxInfo(5), secret_stream_version=1, mid=group.sign(client.public_key)).encode()
        for end in range(len(payload)):
            noise = NoiseHandshake(client, initiator=True, remote_public_key=server_key).send(payload[:end])
            yield m.Request(tid=end, to=to, command=h.PEER_HANDSHAKE, target=blake2b_256(server_key),
                            value=h.Handshake(h.FROM_CLIENT, noise).encode()).encode()


def mutate(data: bytes, rng: random.Random) -> bytes:
    buf = mutate_bytes(data, rng)
    if len(buf) > 2 and buf[0] == m.REQUEST_ID and buf[1] & m.REQ_INTERNAL:
        buf[1] &= ~m.REQ_INTERNAL  # never a PING_NAT or DELAYED_PING aimed at other ports
    return bytes(buf)


def random_datagrams(opts: dict[str, Any], to: Address, rng: random.Random) -> Iterator[bytes]:
    seeds = seed_datagrams(to, rng)
    for i in range(opts["count"]):
        yield rng.randbytes(rng.randint(0, 1500)) if i % 2 else mutate(rng.choice(seeds), rng)


def udx_flood(opts: dict[str, Any], to: Address, sock: socket.socket, rng: random.Random) -> Iterator[bytes]:
    """Become a member with a stream at the server, then send it what a hostile sender would."""
    server_key = bytes.fromhex(opts["server_key"])
    group = GroupKey.from_seed(bytes.fromhex(opts["group_seed"]))
    client = KeyPair.from_seed(rng.randbytes(32))
    local_id = rng.getrandbits(32)
    hs = NoiseHandshake(client, initiator=True, remote_public_key=server_key)
    payload = NoisePayload(udx=UdxInfo(local_id), secret_stream_version=1, mid=group.sign(client.public_key))
    me = sock.getsockname()
    value = h.Handshake(h.FROM_RELAY, hs.send(payload.encode()), peer_address=(me[0], me[1])).encode()
    request = m.Request(tid=77, to=to, command=h.PEER_HANDSHAKE, target=blake2b_256(server_key), value=value)
    sock.settimeout(1.0)
    remote = None
    for _ in range(5):
        sock.sendto(request.encode(), to)
        try:
            data, _ = sock.recvfrom(65535)
        except TimeoutError:
            continue
        msg = m.decode_message(data)
        if isinstance(msg, m.Request) and msg.command == h.PEER_HANDSHAKE and msg.value:
            reply = h.Handshake.decode(msg.value)
            remote = NoisePayload.decode(hs.recv(reply.noise))
            break
    sock.setblocking(True)
    if remote is None or remote.udx is None:
        raise SystemExit("the server did not answer the handshake")
    stream_id = remote.udx.id
    body = rng.randbytes(1100)
    for i in range(opts["count"]):
        # Seq 0 never comes: far-ahead packets stay out of order, and duplicates of seqs 1..50
        # would each be held once (delivered data would only be garbage to the secret stream).
        if opts["order"] == "far-ahead":
            seq = rng.randrange(1, 2**31)
        elif opts["order"] == "in-window":  # ahead of the ack, but within what a stream keeps
            seq = rng.randrange(1, 8192)
        else:
            seq = 1 + i % 50
        yield pack_header(0xFF, 1, DATA, 0, stream_id, DEFAULT_RWND, seq, 0) + body


def main() -> None:
    opts: dict[str, Any] = json.loads(sys.argv[1])
    rng = random.Random(opts.get("seed", 13))
    to: Address = (opts["to"][0], int(opts["to"][1]))
    hosts = max(1, int(opts.get("hosts", 1)))
    socks = []
    for i in range(hosts):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((f"127.0.2.{i + 1}" if hosts > 1 else "127.0.0.1", 0))
        socks.append(s)
    kind = opts["kind"]
    if kind == "handshakes":
        source: Iterator[bytes] = handshakes(opts, to, rng)
    elif kind == "udx":
        source = udx_flood(opts, to, socks[0], rng)
    elif kind == "random":
        source = random_datagrams(opts, to, rng)
    elif kind == "fields":
        source = fields(opts, to, rng)
    else:
        raise SystemExit(f"unknown kind {kind!r}")
    datagrams = list(source)  # built before the clock starts: the flood runs at its rate
    rate = float(opts.get("rate", 2000.0))
    say("started", datagrams=len(datagrams))
    start = time.monotonic()
    sent = errors = 0
    for i, data in enumerate(datagrams):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # pacing the flood, not synchronisation
        try:
            socks[i % hosts].sendto(data, to)
            sent += 1
        except OSError:
            errors += 1
    say("done", sent=sent, errors=errors, seconds=round(time.monotonic() - start, 3),
        bytes=sum(len(d) for d in datagrams))
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
