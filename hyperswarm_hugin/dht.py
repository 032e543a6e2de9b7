"""A DHT node you can run from asyncio code, and a local testnet of them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType
from typing import Any

from hyperswarm_hugin import arguments as check
from hyperswarm_hugin.actors.messages import DHTStatus, FindNodeResult, PingResult
from hyperswarm_hugin.actors.runtime import NodeRuntime, RuntimeConfig
from hyperswarm_hugin.connection import Connection
from hyperswarm_hugin.peer_connect import Server, connect
from hyperswarm_hugin.protocol.dht.events import DHTEvent
from hyperswarm_hugin.protocol.dht.ids import node_id
from hyperswarm_hugin.protocol.dht.node import NodeOptions
from hyperswarm_hugin.protocol.dht.query import QueryReply
from hyperswarm_hugin.protocol.encoding import Address, write_uint
from hyperswarm_hugin.protocol.errors import DecodeError
from hyperswarm_hugin.protocol.hugin import GroupKey, KeyPair
from hyperswarm_hugin.protocol.hyperdht import messages as h
from hyperswarm_hugin.protocol.hyperdht.signing import blake2b_256, sign_announce, sign_mutable, verify_mutable
from hyperswarm_hugin.protocol.noise import warm_up
from hyperswarm_hugin.relay_choice import RelayThrough, check_relay_through

MODES = {"persistent": False, "adaptive": None, "ephemeral": True}


class DHT:
    """One dht-rpc node on loopback or a real interface.

    ``bootstrap`` must be given explicitly (an empty list makes a bootstrapper
    that knows its own address); ``mode`` is ``"persistent"`` (join other
    nodes' routing tables once reachable), ``"adaptive"`` or ``"ephemeral"``.
    ``quick_firewall=False`` skips the quick reachability check, so an ephemeral node stays
    firewalled (and holepunches), as dht-rpc's ``quickFirewall``.
    """

    def __init__(
        self,
        *,
        bootstrap: list[Address],
        host: str = "127.0.0.1",
        port: int = 0,
        mode: str = "persistent",
        firewalled: bool = True,
        quick_firewall: bool = True,
        seed: int | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if bootstrap is None:
            raise ValueError("bootstrap must be given explicitly (a list, possibly empty)")
        bootstrap = check.addresses(bootstrap, "bootstrap", "a bootstrap node") or []
        check.host(host)
        check.port(port)
        if seed is not None:
            check.non_negative_int(seed, "seed")
        is_bootstrapper = not bootstrap
        options = NodeOptions(
            bootstrap=list(bootstrap),
            ephemeral=MODES[mode],
            firewalled=False if is_bootstrapper else firewalled,
            quick_firewall=quick_firewall,
            nat_seed=(host, port) if is_bootstrapper else None,
        )
        self._config = RuntimeConfig(host=host, port=port, options=options, seed=seed)
        self._runtime: NodeRuntime | None = None

    @classmethod
    async def bootstrapper(cls, host: str = "127.0.0.1", port: int = 0) -> DHT:
        """A persistent node with no bootstrap list that others bootstrap from."""
        node = cls(bootstrap=[], host=host, port=port)
        await node.start()
        return node

    async def start(self) -> DHT:
        """Bind and begin bootstrapping (see :meth:`ready`)."""
        if self._runtime is not None:
            raise RuntimeError("already started")
        runtime = NodeRuntime(self._config)
        await runtime.start()
        self._runtime = runtime
        warm_up()  # while the bootstrap is under way: the first connect then runs warm
        return self

    @property
    def runtime(self) -> NodeRuntime:
        if self._runtime is None:
            raise RuntimeError("the node is not started")
        return self._runtime

    @property
    def running(self) -> bool:
        """Started and not closed."""
        return self._runtime is not None and not self._runtime.closed

    @property
    def address(self) -> Address:
        """The server socket's ``(host, port)``."""
        return self.runtime.server_address

    @property
    def expected_id(self) -> bytes:
        """The id this node has once persistent at its bound address."""
        return node_id(self.address)

    def on_event(self, listener: Callable[[DHTEvent], None]) -> None:
        """Call ``listener`` with each node event (ready, persistent)."""
        check.callback(listener, "listener", "(event)", optional=False)
        self.runtime.listeners.append(listener)

    async def ready(self, timeout: float | None = None) -> None:
        """Wait until bootstrapped."""
        if timeout is not None:
            check.seconds(timeout, "timeout")
        await asyncio.wait_for(self.runtime.ready(), timeout)

    async def find_node(self, target: bytes) -> FindNodeResult:
        """Iterative lookup of ``target``: the up-to-20 closest nodes that replied."""
        target = check.bytes32(target, "target")
        return await self.runtime.find_node(target)

    async def ping(self, address: Address) -> PingResult:
        """Ping the DHT node at ``address`` ((host, port) or "host:port")."""
        address = check.address(address, "address")
        return await self.runtime.ping(address)

    async def status(self) -> DHTStatus:
        return await self.runtime.status()

    # ------------------------------------------------------------------ connections

    async def listen(self, key_pair: KeyPair, *, group: GroupKey | None = None,
                     firewall: Callable[[bytes, Any], bool] | None = None,
                     on_connection: Callable[[Connection], None] | None = None,
                     share_local_address: bool = True, relay_through: RelayThrough = None,
                     holepunch: bool = True) -> Server:
        """A server on ``key_pair``: announced at the closest nodes, handing each accepted client
        to ``on_connection``.  With ``group``, clients without that group's ``mid`` are refused
        before anything is allocated; ``firewall(remote_public_key, payload)`` returning True
        refuses (and bans) a client.  ``share_local_address=False`` keeps our local addresses
        out of handshakes (clients on our network then holepunch, as hyperdht's option).
        ``relay_through`` (a blind relay's public key, a list of them, or a function returning one
        or None) also pairs each client that must holepunch through that relay; ``holepunch=False``
        never punches."""
        check.key_pair(key_pair)
        check.group(group)
        check.callback(firewall, "firewall", "(remote_public_key, payload) -> bool")
        check.callback(on_connection, "on_connection", "(connection)")
        server = Server(self.runtime, key_pair, group=group, firewall=firewall, on_connection=on_connection,
                        share_local_address=share_local_address, relay_through=check_relay_through(relay_through),
                        holepunch=bool(holepunch))
        await server.listen()
        return server

    async def connect(self, remote_public_key: bytes, key_pair: KeyPair | None = None, *,
                      group: GroupKey | None = None, relay_addresses: list[Address] | None = None,
                      local_connection: bool = True, fast_open: bool = True,
                      relay_through: RelayThrough = None, holepunch: bool = True) -> Connection:
        """Connect to the server listening on ``remote_public_key``.

        Raises :class:`ConnectError` with a ``code`` (PEER_NOT_FOUND, PEER_CONNECTION_FAILED,
        HOLEPUNCH_ABORTED, ...) or, with ``group``, :class:`ServerRefused` at once when the
        server's ``mid`` is not our group's.  ``local_connection=False`` never uses the server's
        local address (on one host or LAN the peers then holepunch); ``fast_open=False`` sends no
        probe before the first holepunch round; ``relay_through`` (a blind relay's public key, a
        list, or a function) pairs the stream through that relay while punching runs (the first
        path that works is used; ``Connection.relayed`` says which); ``holepunch=False`` never
        punches.  A ``remote_public_key`` that
        is not an Ed25519 public key raises ValueError at once."""
        remote_public_key = check.public_key(remote_public_key, "remote_public_key")
        if key_pair is not None:
            check.key_pair(key_pair)
        check.group(group)
        relays = check.addresses(relay_addresses, "relay_addresses", "a relay address")
        return await connect(self.runtime, key_pair or KeyPair.random(), remote_public_key, group=group,
                             relay_addresses=relays, local_connection=local_connection,
                             fast_open=fast_open, relay_through=check_relay_through(relay_through),
                             holepunch=bool(holepunch))

    # ------------------------------------------------------------------ hyperdht records

    async def announce(self, topic: bytes, key_pair: KeyPair, relay_addresses: list[Address] | None = None) -> int:
        """Announce ``key_pair.public_key`` on ``topic`` at the closest nodes; returns how many took it."""
        topic = check.bytes32(topic, "topic")
        check.key_pair(key_pair)
        peer = h.PeerRecord(key_pair.public_key, (check.addresses(relay_addresses, "relay_addresses") or [])[:3])
        encoded = peer.encode()
        accepted = 0

        def commit(reply: QueryReply) -> tuple[int, bytes] | None:
            nonlocal accepted
            if reply.id is None or reply.token is None:
                return None
            accepted += 1
            signature = sign_announce(key_pair, topic, reply.id, reply.token, encoded)
            return h.ANNOUNCE, h.Announce(peer=peer, signature=signature).encode()

        result = await self.runtime.query(topic, h.LOOKUP, commit=commit)
        if result.error is not None:
            raise DHTError(f"announce failed: {result.error}")
        return accepted

    async def unannounce(self, topic: bytes, key_pair: KeyPair) -> int:
        """Remove our record for ``topic`` from every close node that lists it; returns how many."""
        topic = check.bytes32(topic, "topic")
        check.key_pair(key_pair)
        peer = h.PeerRecord(key_pair.public_key, [])
        encoded = peer.encode()
        asked = 0

        def commit(reply: QueryReply) -> tuple[int, bytes] | None:
            nonlocal asked
            if reply.id is None or reply.token is None or not reply.value:
                return None
            try:
                peers = h.LookupReply.decode(reply.value).peers
            except DecodeError:
                return None
            if len(peers) < 20 and all(p.public_key != key_pair.public_key for p in peers):
                return None
            asked += 1
            signature = sign_announce(key_pair, topic, reply.id, reply.token, encoded, unannounce=True)
            return h.UNANNOUNCE, h.Announce(peer=peer, signature=signature).encode()

        await self.runtime.query(topic, h.LOOKUP, commit=commit)
        return asked

    async def lookup(self, topic: bytes) -> list[h.PeerRecord]:
        """The peers announced on ``topic`` (each public key once); :class:`DHTError` if no DHT
        node replied at all (an empty list means nodes answered and hold no peer)."""
        topic = check.bytes32(topic, "topic")
        return _peers(_replied(await self.runtime.query(topic, h.LOOKUP), "lookup"))

    async def announce_and_lookup(self, topic: bytes, key_pair: KeyPair,
                                  relay_addresses: list[Address] | None = None) -> list[h.PeerRecord]:
        """Announce on ``topic`` (as :meth:`announce`) and return the peers the same query found."""
        topic = check.bytes32(topic, "topic")
        check.key_pair(key_pair)
        peer = h.PeerRecord(key_pair.public_key, (check.addresses(relay_addresses, "relay_addresses") or [])[:3])
        encoded = peer.encode()

        def commit(reply: QueryReply) -> tuple[int, bytes] | None:
            if reply.id is None or reply.token is None:
                return None
            signature = sign_announce(key_pair, topic, reply.id, reply.token, encoded)
            return h.ANNOUNCE, h.Announce(peer=peer, signature=signature).encode()

        result = await self.runtime.query(topic, h.LOOKUP, commit=commit)
        if result.error is not None:
            raise DHTError(f"announce failed: {result.error}")
        return _peers(result)

    async def lookup_and_unannounce(self, topic: bytes, key_pair: KeyPair) -> list[h.PeerRecord]:
        """Look ``topic`` up and take our record back wherever it is listed (hyperdht's lookupAndUnannounce)."""
        topic = check.bytes32(topic, "topic")
        check.key_pair(key_pair)
        peer = h.PeerRecord(key_pair.public_key, [])
        encoded = peer.encode()

        def commit(reply: QueryReply) -> tuple[int, bytes] | None:
            if reply.id is None or reply.token is None or not reply.value:
                return None
            signature = sign_announce(key_pair, topic, reply.id, reply.token, encoded, unannounce=True)
            return h.UNANNOUNCE, h.Announce(peer=peer, signature=signature).encode()

        return _peers(_replied(await self.runtime.query(topic, h.LOOKUP, commit=commit), "lookup"))

    async def find_peer(self, public_key: bytes) -> h.PeerRecord | None:
        """The record a listening server left at the nodes closest to ``hash(public_key)``."""
        public_key = check.public_key(public_key, "public_key")
        result = await self.runtime.query(blake2b_256(public_key), h.FIND_PEER)
        for reply in result.replies:
            if reply.value:
                try:
                    return h.PeerRecord.decode(reply.value)
                except DecodeError:
                    continue
        return None

    async def immutable_put(self, value: bytes) -> bytes:
        """Store ``value`` at the nodes closest to its hash; returns the hash (its address)."""
        if not isinstance(value, bytes | bytearray) or not value:
            raise ValueError("value must be non-empty bytes (an immutable value)")
        value = bytes(value)
        target = blake2b_256(value)
        result = await self.runtime.query(target, h.IMMUTABLE_GET, commit=lambda r: (h.IMMUTABLE_PUT, value))
        if result.error is not None:
            raise DHTError(f"immutable put failed: {result.error}")
        return target

    async def immutable_get(self, target: bytes) -> bytes | None:
        """The value whose hash is ``target``, or None."""
        target = check.bytes32(target, "target")
        result = await self.runtime.query(target, h.IMMUTABLE_GET)
        for reply in result.replies:
            if reply.value and blake2b_256(reply.value) == target:
                return reply.value
        return None

    async def mutable_put(self, key_pair: KeyPair, value: bytes, seq: int = 0) -> None:
        """Store a signed ``value`` under ``key_pair``'s public key, with sequence ``seq``."""
        check.key_pair(key_pair)
        if not isinstance(value, bytes | bytearray) or not value:
            raise ValueError("value must be non-empty bytes (a mutable value)")
        value = bytes(value)
        check.non_negative_int(seq, "seq")
        signature = sign_mutable(key_pair, seq, value)
        put = h.MutablePut(key_pair.public_key, seq, value, signature).encode()
        result = await self.runtime.query(blake2b_256(key_pair.public_key), h.MUTABLE_GET, _uint(0),
                                          commit=lambda r: (h.MUTABLE_PUT, put))
        if result.error is not None:
            raise DHTError(f"mutable put failed: {result.error}")

    async def mutable_get(self, public_key: bytes, seq: int = 0) -> h.MutableRecord | None:
        """The newest correctly signed value under ``public_key`` with at least ``seq``."""
        public_key = check.public_key(public_key, "public_key")
        check.non_negative_int(seq, "seq")
        result = await self.runtime.query(blake2b_256(public_key), h.MUTABLE_GET, _uint(seq))
        best: h.MutableRecord | None = None
        for reply in result.replies:
            if not reply.value:
                continue
            try:
                record = h.MutableRecord.decode(reply.value)
            except DecodeError:
                continue
            if record.seq >= seq and verify_mutable(public_key, record.signature, record.seq, record.value) \
                    and (best is None or record.seq > best.seq):
                best = record
        return best

    async def close(self) -> None:
        if self._runtime is not None:
            await self._runtime.close()

    async def __aenter__(self) -> DHT:
        if self._runtime is None:
            await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class DHTError(Exception):
    """A DHT operation that could not be completed (e.g. no node accepted a write)."""


def _replied(result: FindNodeResult, what: str) -> FindNodeResult:
    """``result`` if some DHT node answered; no answer at all is not "no peers" but a failure."""
    if not result.closest:
        raise DHTError(f"{what} failed: no DHT node replied")
    return result


def _peers(result: FindNodeResult) -> list[h.PeerRecord]:
    """The peer records in every reply of a LOOKUP query (not only the closest: as hyperdht's
    stream, records held just outside the final closest set count), each public key once."""
    seen: dict[bytes, h.PeerRecord] = {}
    for reply in result.replies:
        if not reply.value:
            continue
        try:
            peers = h.LookupReply.decode(reply.value).peers
        except DecodeError:
            continue
        for peer in peers:
            seen.setdefault(peer.public_key, peer)
    return list(seen.values())


def _uint(n: int) -> bytes:
    out = bytearray()
    write_uint(out, n)
    return bytes(out)


class Testnet:
    """A bootstrapper and ``size - 1`` persistent nodes on one host, in this process."""

    __test__ = False  # not a pytest class

    def __init__(self, nodes: list[DHT]) -> None:
        self.nodes = nodes

    @property
    def bootstrap(self) -> list[Address]:
        return [self.nodes[0].address]

    @classmethod
    async def create(cls, size: int = 5, host: str = "127.0.0.1", port: int = 0,
                     ready_timeout: float = 30.0) -> Testnet:
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"size must be at least 1 (a testnet has at least one node), got {size!r}")
        check.host(host)
        check.port(port)
        check.seconds(ready_timeout, "ready_timeout")
        nodes = [await DHT.bootstrapper(host, port)]
        net = cls(nodes)
        try:
            for _ in range(size - 1):
                node = DHT(bootstrap=net.bootstrap, host=host, firewalled=False)
                nodes.append(node)
                await node.start()
                await node.ready(ready_timeout)
        except BaseException:
            await net.close()
            raise
        return net

    async def close(self) -> None:
        for node in reversed(self.nodes):
            await node.close()

    async def __aenter__(self) -> Testnet:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
