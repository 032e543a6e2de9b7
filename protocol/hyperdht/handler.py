"""hyperdht's request handling on a node: routing handshakes, and storage for others.

Attached to a :class:`~hyperswarm_hugin.protocol.dht.node.DHTNode` as its ``app``.  Commands 2-9 are
served only while the node is persistent (an ephemeral node answers them with
UNKNOWN_COMMAND, as hyperdht does).  A request that fails its checks gets no
reply at all, as in hyperdht; every drop is counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from hyperswarm_hugin.protocol.dht import messages as m
from hyperswarm_hugin.protocol.dht.node import SERVER, DHTNode
from hyperswarm_hugin.protocol.encoding import Address, Reader
from hyperswarm_hugin.protocol.errors import DecodeError
from hyperswarm_hugin.protocol.hyperdht import messages as h
from hyperswarm_hugin.protocol.hyperdht.signing import blake2b_256, verify_announce, verify_mutable
from hyperswarm_hugin.protocol.hyperdht.storage import RouterEntry, Storage

MAX_BUMP_DRIFT = 60.0
MAX_RELAY_ADDRESSES = 3

ServerHook = Callable[[m.Request, h.Handshake, Address, int, float], None]
"""A local server's handler for a PEER_HANDSHAKE (request, decoded value, from, socket, now)."""

HolepunchHook = Callable[[m.Request, h.Holepunch, Address, int, float], None]
"""A local server's handler for a relayed PEER_HOLEPUNCH (request, decoded value, from, socket, now)."""


class HyperDHTHandler:
    """The hyperdht command set for one node."""

    def __init__(self, node: DHTNode, storage: Storage | None = None, wall_offset: float | None = None) -> None:
        """``wall_offset`` turns the node's monotonic ``now`` into Unix seconds (for bump checks)."""
        self.node = node
        self.storage = storage or Storage()
        self.servers: dict[bytes, ServerHook] = {}
        self.holepunch_servers: dict[bytes, HolepunchHook] = {}
        self.dropped: Counter[str] = Counter()
        self.received: Counter[int] = Counter()  # hyperdht requests received, by command
        self._wall_offset = wall_offset

    # ------------------------------------------------------------------ dispatch

    def on_request(self, req: m.Request, address: Address, socket: int, now: float) -> bool:
        cmd = req.command
        self.received[cmd] += 1
        if cmd == h.PEER_HANDSHAKE:
            self._on_handshake(req, address, socket, now)
            return True
        if cmd == h.PEER_HOLEPUNCH:
            self._on_holepunch(req, address, socket, now)
            return True
        if self.node.id is None or not h.FIND_PEER <= cmd <= h.IMMUTABLE_GET:
            return False
        if req.target is None:
            self.dropped["no-target"] += 1
            return True
        handler = self._handlers[cmd - h.FIND_PEER]
        handler(self, req, address, socket, now)
        return True

    def _drop(self, why: str) -> None:
        self.dropped[why] += 1

    # ------------------------------------------------------------------ routing

    def _forward(self, req: m.Request, value: bytes, to: Address) -> None:
        """Pass a request on with the client's tid, so the final reply matches its transaction."""
        socket = self.node.requests_socket
        fwd = m.Request(tid=req.tid, to=to, command=req.command, internal=False,
                        id=self.node.own_id_for(socket), target=req.target, value=value)
        self.node.send_raw(fwd.encode(), to, socket)

    def _final_reply(self, req: m.Request, value: bytes, to: Address) -> None:
        res = m.Response(tid=req.tid, to=to, id=self.node.own_id_for(SERVER), value=value)
        self.node.send_raw(res.encode(), to, SERVER)

    def _on_handshake(self, req: m.Request, address: Address, socket: int, now: float) -> None:
        if req.target is None or req.value is None:
            return self._drop("handshake-malformed")
        try:
            msg = h.Handshake.decode(req.value)
        except DecodeError:
            return self._drop("handshake-malformed")
        server = self.servers.get(req.target)
        if server is not None and msg.mode in (h.FROM_CLIENT, h.FROM_RELAY, h.FROM_SECOND_RELAY):
            server(req, msg, address, socket, now)
            return None
        entry = self.storage.router.get(req.target, now)
        if msg.mode == h.FROM_CLIENT:
            dest = msg.relay_address or (entry.relay if entry else None)
            if dest is None:
                self.node.reply(req, address, socket, value=None, token=False, closer=True)
                return None
            self._forward(req, h.Handshake(h.FROM_RELAY, msg.noise, peer_address=address).encode(), dest)
        elif msg.mode == h.FROM_RELAY:
            if entry is None:
                return self._drop("handshake-no-route")
            self._forward(req, h.Handshake(h.FROM_SECOND_RELAY, msg.noise, msg.peer_address, address).encode(),
                          entry.relay)
        elif msg.mode == h.FROM_SERVER:
            if msg.peer_address is None:
                return self._drop("handshake-no-peer")
            self._final_reply(req, h.Handshake(h.REPLY, msg.noise, peer_address=address).encode(), msg.peer_address)
        else:
            self._drop("handshake-mode")
        return None

    def _on_holepunch(self, req: m.Request, address: Address, socket: int, now: float) -> None:
        if req.target is None or req.value is None:
            return self._drop("holepunch-malformed")
        try:
            msg = h.Holepunch.decode(req.value)
        except DecodeError:
            return self._drop("holepunch-malformed")
        server = self.holepunch_servers.get(req.target)
        if server is not None and msg.mode == h.FROM_RELAY:
            server(req, msg, address, socket, now)
            return None
        entry = self.storage.router.get(req.target, now)
        if msg.mode == h.FROM_CLIENT:
            dest = msg.peer_address or (entry.relay if entry else None)
            if dest is None:
                return self._drop("holepunch-no-route")
            self._forward(req, h.Holepunch(h.FROM_RELAY, msg.id, msg.payload, address).encode(), dest)
        elif msg.mode == h.FROM_SERVER:
            if msg.peer_address is None:
                return self._drop("holepunch-no-peer")
            self._final_reply(req, h.Holepunch(h.REPLY, msg.id, msg.payload, address).encode(), msg.peer_address)
        else:
            self._drop("holepunch-mode")
        return None

    # ------------------------------------------------------------------ storage commands

    def _find_peer(self, req: m.Request, address: Address, socket: int, now: float) -> None:
        assert req.target is not None
        entry = self.storage.router.get(req.target, now)
        self.node.reply(req, address, socket, value=entry.record if entry else None)

    def _lookup(self, req: m.Request, address: Address, socket: int, now: float) -> None:
        assert req.target is not None
        records = self.storage.records.get(req.target, now)
        entry = self.storage.router.get(req.target, now)
        if entry is not None and len(records) < 20:
            records.append(entry.record)
        value = None
        if records:
            bump = self.storage.bumps.get(req.target, now) or 0
            value = h.LookupReply([h.PeerRecord.decode(r) for r in records], bump).encode()
        self.node.reply(req, address, socket, value=value)

    def _announce(self, req: m.Request, address: Address, socket: int, now: float) -> None:
        ann = self._decode_announce(req)
        node_id = self.node.id
        if ann is None or node_id is None or req.token is None or req.target is None:
            return None
        if ann.peer is None:
            if ann.refresh is None:
                return self._drop("announce-empty")
            return self._refresh(req, ann.refresh, address, socket, now)
        encoded_peer = ann.peer.encode()
        if ann.signature is None or not verify_announce(ann.peer.public_key, ann.signature, req.target, node_id,
                                                        req.token, encoded_peer, ann.refresh):
            return self._drop("announce-signature")
        peer = h.PeerRecord(ann.peer.public_key, ann.peer.relay_addresses[:MAX_RELAY_ADDRESSES])
        record = peer.encode()
        announce_self = blake2b_256(peer.public_key) == req.target
        if announce_self:
            self.storage.router.set(req.target, RouterEntry(address, record), now)
            self.storage.records.remove(req.target, peer.public_key)
        else:
            current = self.storage.bumps.get(req.target, now) or 0
            wall = None if self._wall_offset is None else now + self._wall_offset
            if ann.bump > current and (wall is None or ann.bump <= (wall + MAX_BUMP_DRIFT) * 1000):
                self.storage.bumps.set(req.target, ann.bump, now)
            self.storage.records.add(req.target, peer.public_key, record, now)
        if ann.refresh is not None:
            self.storage.refreshes.set(ann.refresh, (req.target, record, announce_self), now)
        self.node.reply(req, address, socket, value=None, token=False, closer=False)
        return None

    def _refresh(self, req: m.Request, secret: bytes, address: Address, socket: int, now: float) -> None:
        active = blake2b_256(secret)
        found = self.storage.refreshes.get(active, now)
        if found is None:
            return self._drop("refresh-unknown")
        topic, record, announce_self = found
        if announce_self:
            self.storage.router.set(topic, RouterEntry(address, record), now)
        else:
            self.storage.records.add(topic, record[:32], record, now)
        self.storage.refreshes.delete(active)
        self.storage.refreshes.set(secret, found, now)
        self.node.reply(req, address, socket, value=None, token=False, closer=False)
        return None

    def _unannounce(self, req: m.Request, address: Address, socket: int, now: float) -> None:
        ann = self._decode_announce(req)
        node_id = self.node.id
        if ann is None or node_id is None or req.token is None or req.target is None:
            return None
        if ann.peer is None or ann.signature is None:
            return self._drop("unannounce-incomplete")
        if not verify_announce(ann.peer.public_key, ann.signature, req.target, node_id, req.token,
                               ann.peer.encode(), ann.refresh, unannounce=True):
            return self._drop("unannounce-signature")
        if blake2b_256(ann.peer.public_key) == req.target:
            self.storage.router.delete(req.target)
        self.storage.records.remove(req.target, ann.peer.public_key)
        self.node.reply(req, address, socket, value=None, token=False, closer=False)
        return None

    def _decode_announce(self, req: m.Request) -> h.Announce | None:
        if req.token is None or not req.value:
            self._drop("announce-malformed")
            return None
        try:
            return h.Announce.decode(req.value)
        except DecodeError:
            self._drop("announce-malformed")
            return None

    def _mutable_get(self, req: m.Request, address: Address, socket: int, now: float) -> None:
        assert req.target is not None
        if not req.value:
            return self._drop("mutable-get-malformed")
        try:
            seq = Reader(req.value).uint()
        except DecodeError:
            return self._drop("mutable-get-malformed")
        stored = self.storage.mutables.get(req.target, now)
        if stored is not None and Reader(stored).uint() < seq:
            stored = None
        self.node.reply(req, address, socket, value=stored)
        return None

    def _mutable_put(self, req: m.Request, address: Address, socket: int, now: float) -> None:
        assert req.target is not None
        if req.token is None or not req.value:
            return self._drop("mutable-put-malformed")
        try:
            put = h.MutablePut.decode(req.value)
        except DecodeError:
            return self._drop("mutable-put-malformed")
        if blake2b_256(put.public_key) != req.target:
            return self._drop("mutable-put-target")
        if not put.value or not verify_mutable(put.public_key, put.signature, put.seq, put.value):
            return self._drop("mutable-put-signature")
        stored = self.storage.mutables.get(req.target, now)
        if stored is not None:
            existing = h.MutableRecord.decode(stored)
            if existing.seq == put.seq and existing.value != put.value:
                self.node.reply(req, address, socket, error=h.SEQ_REUSED, token=False)
                return None
            if put.seq < existing.seq:
                self.node.reply(req, address, socket, error=h.SEQ_TOO_LOW, token=False)
                return None
        record = h.MutableRecord(put.seq, put.value, put.signature).encode()
        self.storage.mutables.set(req.target, record, now)
        self.node.reply(req, address, socket)
        return None

    def _immutable_get(self, req: m.Request, address: Address, socket: int, now: float) -> None:
        assert req.target is not None
        self.node.reply(req, address, socket, value=self.storage.immutables.get(req.target, now))

    def _immutable_put(self, req: m.Request, address: Address, socket: int, now: float) -> None:
        assert req.target is not None
        if req.token is None or not req.value:
            return self._drop("immutable-put-malformed")
        if blake2b_256(req.value) != req.target:
            return self._drop("immutable-put-target")
        self.storage.immutables.set(req.target, req.value, now)
        self.node.reply(req, address, socket)
        return None

    _handlers = (_find_peer, _lookup, _announce, _unannounce, _mutable_put, _mutable_get,
                 _immutable_put, _immutable_get)
