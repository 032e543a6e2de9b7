"""Issue 13: what a stranger sends a live node is bounded, and members are still served.

Each test drives a node in this process with hand-built datagrams from a raw UDP socket (an
attacker's view: PEER_HANDSHAKEs with Noise messages we build ourselves, UDX packets for streams
that exist) and then checks that the node kept its limits and still serves a real member.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from hyperswarm_hugin import DHT, GroupKey, Hyperswarm, KeyPair, Testnet, peer_connect
from hyperswarm_hugin.actors import auth_actor, swarm_actor
from hyperswarm_hugin.actors.messages import AuthStatusRequest
from hyperswarm_hugin.peer_connect import Server, connect
from hyperswarm_hugin.protocol.dht import messages as m
from hyperswarm_hugin.protocol.dht.node import DHTNode
from hyperswarm_hugin.protocol.encoding import Address
from hyperswarm_hugin.protocol.hyperdht import messages as h
from hyperswarm_hugin.protocol.hyperdht.constants import Firewall
from hyperswarm_hugin.protocol.hyperdht.payloads import NoisePayload, UdxInfo
from hyperswarm_hugin.protocol.noise import NoiseHandshake
from hyperswarm_hugin.protocol.udx.packet import DATA, DEFAULT_RWND, pack_header
from tests.system.udp_probe import UdpProbe

pytestmark = [pytest.mark.system, pytest.mark.timeout(90)]

log = logging.getLogger(__name__)

GROUP = GroupKey.from_seed(b"hostile peers room")


async def until(condition: Callable[[], bool], deadline: float = 10.0, what: str = "condition") -> None:
    """Wait for ``condition`` (checked every loop turn batch), failing after ``deadline`` s."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"{what} not reached within {deadline} s")
        await asyncio.sleep(0.02)


def msg1(server_key: bytes, client: KeyPair, *, mid: bytes | None, udx_id: int = 1,
         firewall: int = Firewall.UNKNOWN) -> bytes:
    """A client's first Noise message to ``server_key`` carrying a hand-made payload."""
    payload = NoisePayload(firewall=firewall, udx=UdxInfo(udx_id), secret_stream_version=1, mid=mid)
    return NoiseHandshake(client, initiator=True, remote_public_key=server_key).send(payload.encode())


def handshake_request(server: Server, to: Address, noise: bytes, *, tid: int,
                      relayed_for: Address | None = None) -> bytes:
    """A PEER_HANDSHAKE as a client sends it (FROM_CLIENT), or as a relay forwards it (FROM_RELAY)."""
    if relayed_for is None:
        value = h.Handshake(h.FROM_CLIENT, noise).encode()
    else:
        value = h.Handshake(h.FROM_RELAY, noise, peer_address=relayed_for).encode()
    return m.Request(tid=tid, to=to, command=h.PEER_HANDSHAKE, target=server.target, value=value).encode()


class Node:
    """A testnet, a listening Python server with the group barrier and a member to connect with."""

    def __init__(self, net: Testnet, server_node: DHT, member_node: DHT, server: Server) -> None:
        self.net = net
        self.server_node = server_node
        self.member_node = member_node
        self.server = server

    @property
    def address(self) -> Address:
        return self.server_node.address

    async def member_connects(self, timeout: float = 15.0, **kwargs: Any) -> float:
        """Connect as a member; the seconds it took."""
        start = time.monotonic()
        conn = await asyncio.wait_for(connect(self.member_node.runtime, KeyPair.random(),
                                              self.server.key_pair.public_key, group=GROUP, **kwargs), timeout)
        took = time.monotonic() - start
        await conn.close()
        return took


def with_server(test: Callable[[Node], Awaitable[None]], server_dht: dict[str, Any] | None = None,
                **server_options: Any) -> None:
    async def main() -> None:
        net = await Testnet.create(4)
        async with net, DHT(bootstrap=net.bootstrap, **(server_dht or {})) as node, \
                DHT(bootstrap=net.bootstrap) as member:
            await node.ready(10)
            await member.ready(10)
            server = Server(node.runtime, KeyPair.random(), group=GROUP, **server_options)
            await server.listen()
            try:
                await test(Node(net, node, member, server))
            finally:
                await server.close()

    asyncio.run(main())


# ---------------------------------------------------------------------- fault 3


def test_a_udx_stream_id_beyond_uint32_is_refused_cleanly() -> None:
    """A member's handshake naming udx stream 2^32: a counted refusal, no exception, no stream."""
    async def test(node: Node) -> None:
        loop = asyncio.get_running_loop()
        errors: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _loop, context: errors.append(context))
        streams_before = len(node.server_node.runtime.streams.streams)
        probe = await UdpProbe.open()
        try:
            client = KeyPair.random()
            noise = msg1(node.server.key_pair.public_key, client, mid=GROUP.sign(client.public_key),
                         udx_id=2**32)
            probe.send(handshake_request(node.server, node.address, noise, tid=7), node.address)
            await probe.ping(node.address, tid=99)  # handled in order: the handshake was seen
        finally:
            probe.close()
        log.info("refusals: %s", node.server.stats.refused)
        assert errors == []
        assert node.server.stats.refused.get("bad-handshake", 0) == 1
        assert len(node.server_node.runtime.streams.streams) == streams_before
        assert node.server.stats.accepted == 0
        await node.member_connects()

    with_server(test)


# ---------------------------------------------------------------------- fault 5


BOOM = b"BOOM: a datagram that trips a bug"


def test_a_datagram_that_trips_a_bug_fails_alone_and_nothing_is_replayed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two pings around a datagram whose handling raises, all in one batch: each ping answered
    exactly once, the failure counted, no actor failure (main replayed the batch, then poisoned it)."""
    real = DHTNode.receive_datagram

    def receive_datagram(self: DHTNode, data: bytes, address: Address, socket: int, now: float) -> None:
        if data == BOOM:
            raise RuntimeError("a bug in the handling of one datagram")
        real(self, data, address, socket, now)

    monkeypatch.setattr(DHTNode, "receive_datagram", receive_datagram)

    async def main() -> None:
        async with await Testnet.create(3) as net:
            node = net.nodes[1]
            probe = await UdpProbe.open()
            try:
                ping = [m.Request(tid=tid, to=node.address, command=m.PING, internal=True).encode()
                        for tid in (1, 2)]
                for data in (ping[0], BOOM, ping[1]):  # sent before the node's loop turn: one batch
                    probe.send(data, node.address)
                # A ping sent after the batch is answered after it: until then, collect every answer.
                probe.send(m.Request(tid=99, to=node.address, command=m.PING, internal=True).encode(),
                           node.address)
                answered: list[int] = []
                end = time.monotonic() + 10
                while 99 not in answered:
                    assert time.monotonic() < end, f"the node went quiet; answered so far: {answered}"
                    try:
                        data, _ = await asyncio.wait_for(probe.inbox.get(), 1)
                    except TimeoutError:
                        continue
                    answered.append(m.decode_message(data).tid)
                answered.remove(99)
            finally:
                probe.close()
            status = await node.status()
            log.info("answers by tid: %s, datagram errors: %s", answered, status.stats.get("datagram_errors"))
            assert sorted(answered) == [1, 2]
            assert status.stats["datagram_errors"] == 1
            assert node.runtime.actor_failures == 0

    asyncio.run(main())


# ---------------------------------------------------------------------- fault 1


def test_half_open_connections_do_not_lock_the_swarm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Relayed handshakes of valid member keys whose clients never send a UDX packet, twice
    max_peers of them: a real member still connects, and the half-open streams are dropped after
    HANDSHAKE_INITIAL_TIMEOUT (1 s here).  On main every member was refused ``max-peers``."""
    monkeypatch.setattr(peer_connect, "HANDSHAKE_INITIAL_TIMEOUT", 1.0, raising=False)  # absent on main
    max_peers = 4

    async def main() -> None:
        async with await Testnet.create(4) as net, \
                Hyperswarm(group=GROUP, bootstrap=net.bootstrap, max_peers=max_peers) as swarm, \
                DHT(bootstrap=net.bootstrap) as member:
            await member.ready(10)
            await swarm.listen()
            server = swarm._server
            assert server is not None
            runtime = swarm._dht.runtime
            streams_before = len(runtime.streams.streams)
            to = runtime.server_address
            probe = await UdpProbe.open()
            try:
                for i in range(2 * max_peers):
                    client = KeyPair.random()
                    noise = msg1(server.key_pair.public_key, client, mid=GROUP.sign(client.public_key))
                    probe.send(handshake_request(server, to, noise, tid=i, relayed_for=("127.0.0.1", 40000 + i)), to)
                await until(lambda: server.stats.handshakes == 2 * max_peers, what="the half-open handshakes handled")
                start = time.monotonic()
                conn = await asyncio.wait_for(connect(member.runtime, KeyPair.random(), server.key_pair.public_key,
                                                      group=GROUP), 15)
                took = time.monotonic() - start
                log.info("a member connected %.3f s into a flood of %d half-open connections (refused: %s)",
                         took, 2 * max_peers, server.stats.refused)
                assert server.stats.refused.get("max-peers", 0) == 0
                await until(lambda: server.stats.never_started == 2 * max_peers, 5, "the half-open streams dropped")
                await until(lambda: len(runtime.streams.streams) == streams_before + 1, 5, "their streams freed")
                assert len(server.connections) == 1
                assert len(swarm.connections) == 1
                await conn.close()
            finally:
                probe.close()

    asyncio.run(main())


# ---------------------------------------------------------------------- fault 2


def test_forged_relay_addresses_do_not_get_a_member_refused() -> None:
    """From 127.0.0.2, handshakes posing as a relay and naming the member's addresses: 30 without
    a ``mid`` (past the burst and the failure limit).  The member, relayed by a real DHT node,
    still connects (on main it was refused as throttled: the limits were keyed on the named
    address).  The forger's own budget is what ran out."""
    async def test(node: Node) -> None:
        probe = await UdpProbe.open("127.0.0.2")
        named = [node.member_node.runtime.server_address, node.member_node.runtime.client_address]
        try:
            for i in range(30):
                client = KeyPair.random()
                noise = msg1(node.server.key_pair.public_key, client, mid=None)
                probe.send(handshake_request(node.server, node.address, noise, tid=i,
                                             relayed_for=named[i % 2]), node.address)
            await probe.ping(node.address, tid=99)
        finally:
            probe.close()
        refused = dict(node.server.stats.refused)
        log.info("forged relayed handshakes refused as %s", refused)
        assert sum(refused.values()) == 30
        took = await node.member_connects(timeout=10)  # relay_addresses=None: through the relays
        log.info("the member connected through a relay in %.3f s", took)
        assert node.server.stats.refused == refused  # nothing more refused: the member got in

    with_server(test)


def test_a_direct_client_does_not_escape_its_rate_limit_by_changing_ports() -> None:
    """30 direct handshakes without a ``mid`` from 127.0.0.3, each from a new port: past 20 the host
    is refused (rate-limited, or throttled after 20 failures); on main each port had budgets of
    its own and all 30 reached the group check."""
    async def test(node: Node) -> None:
        for i in range(30):
            probe = await UdpProbe.open("127.0.0.3")
            try:
                noise = msg1(node.server.key_pair.public_key, KeyPair.random(), mid=None)
                probe.send(handshake_request(node.server, node.address, noise, tid=i), node.address)
                await probe.ping(node.address, tid=99)  # handled before the next port is used
            finally:
                probe.close()
        refused = node.server.stats.refused
        log.info("30 direct handshakes from 30 ports of one host refused as %s", refused)
        assert refused.get("rate-limited", 0) + refused.get("throttled", 0) >= 8
        await node.member_connects()  # another host: unaffected

    with_server(test)


# ---------------------------------------------------------------------- fault 4


def held(stream: Any) -> int:
    """Bytes a stream holds for its reader: not yet taken, the reader's backlog and the payloads
    held out of order (without the bookkeeping cost that ``held_bytes`` adds)."""
    return stream.inbox_bytes + stream.backlog + sum(len(p) for p, _ in stream._ooo.values())


@pytest.mark.parametrize("order", ["far-ahead", "in-order"])
def test_udx_receive_memory_is_bounded_by_the_window_we_advertise(order: str) -> None:
    """8 MB of UDX DATA at a stream nobody reads, twice the 4 MiB window we advertise: packets
    far ahead of the ack (a hole at seq 0), or in order.  What the stream holds stays within the
    window (main: it held all 8 MB)."""
    async def main() -> None:
        async with await Testnet.create(3) as net:
            node = net.nodes[1]
            probe = await UdpProbe.open()
            transport = node.runtime.create_stream()
            try:
                transport.connect(77, probe.address)
                payload = bytes(1000)
                first = 1 if order == "far-ahead" else 0
                for batch in range(80):
                    for i in range(100):
                        seq = first + batch * 100 + i
                        probe.send(pack_header(0xFF, 1, DATA, 0, transport.id, DEFAULT_RWND, seq, 0) + payload,
                                   node.address)
                    await probe.ping(node.address, tid=batch)  # the batch was handled before it
                stream = transport.stream
                log.info("%s: 8,000,000 bytes sent, the stream holds %d (window %d)", order, held(stream),
                         DEFAULT_RWND)
                assert held(stream) <= DEFAULT_RWND + 64 * 1024
                assert node.runtime.actor_failures == 0
            finally:
                transport.destroy()
                probe.close()

    asyncio.run(main())


def test_a_member_ignoring_our_window_cannot_fill_our_memory() -> None:
    """A member whose sender ignores the window we advertise writes 16 MiB our application never
    reads: the connection's queue and its stream stay within the window (main queued it all)."""
    async def test(node: Node) -> None:
        conn = await asyncio.wait_for(connect(node.member_node.runtime, KeyPair.random(),
                                              node.server.key_pair.public_key, group=GROUP), 10)
        try:
            await until(lambda: len(node.server.connections) == 1, what="the server's side")
            [accepted] = list(node.server.connections)
            sender = conn._transport.stream
            sender._window = lambda: 100_000  # type: ignore[method-assign]  # a sender that ignores rwnd
            total = 16 * 1024 * 1024
            message = bytes(64 * 1024)
            for _ in range(total // len(message)):
                conn.write(message)
            receiver = accepted._transport.stream
            # Until the server refused a packet beyond its window, or took everything (main).
            await until(lambda: getattr(receiver, "stats_dropped", 0) > 0 or held(receiver) >= total, 30,
                        "the server's stream full")
            log.info("a rogue sender wrote %d bytes: the server holds %d in its connection queue, "
                     "%d in its stream", total, accepted._queued, held(receiver))
            assert held(receiver) <= DEFAULT_RWND + 64 * 1024
        finally:
            await conn.close()

    with_server(test)


# ---------------------------------------------------------------------- fault 6


def test_firewall_bans_are_bounded_and_explicit_bans_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """300 member keys the user's firewall refuses, each handshaking once: the AuthActor keeps the
    last 100 (MAX_FIREWALL_BANS, 4096 by default) and the swarm a PeerInfo for the last 50
    (MAX_FIREWALL_BANNED_PEERS, 1024); an explicit ban made before the flood still holds.
    On main every one of them was banned forever, with a PeerActor each."""
    monkeypatch.setattr(auth_actor, "MAX_FIREWALL_BANS", 100, raising=False)
    monkeypatch.setattr(swarm_actor, "MAX_FIREWALL_BANNED_PEERS", 50, raising=False)
    flood = 300
    explicit = KeyPair.random()

    async def main() -> None:
        async with await Testnet.create(4) as net, \
                Hyperswarm(group=GROUP, bootstrap=net.bootstrap, firewall=lambda key, payload: True) as swarm:
            await swarm.listen()
            swarm.ban(explicit.public_key)
            server = swarm._server
            assert server is not None
            to = swarm._dht.runtime.server_address
            probes = [await UdpProbe.open(f"127.0.0.{10 + i}") for i in range(flood // 15)]
            try:
                def handshake(client: KeyPair, i: int) -> None:
                    noise = msg1(server.key_pair.public_key, client, mid=GROUP.sign(client.public_key))
                    probes[i % len(probes)].send(handshake_request(server, to, noise, tid=i), to)

                for i in range(flood):  # 15 from each host: within every rate limit
                    handshake(KeyPair.random(), i)
                await until(lambda: server.stats.refused.get("firewall", 0) == flood, 20, "every key refused")
                handshake(explicit, flood)
                await until(lambda: server.stats.refused.get("banned", 0) == 1, 5, "the explicit ban")
            finally:
                for probe in probes:
                    probe.close()
            status = swarm._dht.runtime.ask_auth(AuthStatusRequest(0))
            log.info("%d keys refused by the firewall: the AuthActor holds %d bans, the swarm %d peers",
                     flood, status.banned, len(swarm.peers))
            assert status.banned <= 100 + 1
            assert len(swarm.peers) <= 50 + 1
            assert swarm.stats["banned_peers"] == flood

    asyncio.run(main())


def test_dropped_half_open_connections_free_their_punch_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """A firewalled server opens a puncher (a UDP socket) for each relayed handshake it accepts:
    past MAX_UNSTARTED (4 here) the oldest half-open connections go, and their punchers with them
    (they stayed for 10 s, so a member's half-open flood could run the node out of sockets)."""
    monkeypatch.setattr(peer_connect, "MAX_UNSTARTED", 4)

    async def test(node: Node) -> None:
        assert node.server._public is None  # firewalled: every relayed handshake gets a puncher
        probe = await UdpProbe.open()
        try:
            for i in range(12):
                client = KeyPair.random()
                noise = msg1(node.server.key_pair.public_key, client, mid=GROUP.sign(client.public_key))
                probe.send(handshake_request(node.server, node.address, noise, tid=i,
                                             relayed_for=("127.0.0.1", 41000 + i)), node.address)
            await until(lambda: node.server.stats.handshakes == 12, what="the handshakes handled")
        finally:
            probe.close()
        slots = len(node.server._punches._slots)
        log.info("12 half-open relayed handshakes: %d accepted, %d dropped, %d punch slots open",
                 node.server.stats.accepted, node.server.stats.never_started, slots)
        assert node.server.stats.never_started == 12 - 4
        assert slots <= 4
        await node.member_connects()

    with_server(test, server_dht={"mode": "ephemeral", "quick_firewall": False})
