"""NodeActor: one cluster node in its own process, hosting a DHT node or a swarm peer.

The node runs on an asyncio loop in a thread of the actor's process (NodeHost).  Requests
arrive at the actor as msgpack maps (protocol.py), are run on the loop, and answered; events
(connection, data, close) collect in a thread-safe queue that the actor drains on a short
wake-up and pushes to its subscribers.  Node state (key seed, bans, a routing-table snapshot)
is saved to the data directory, so a restarted node comes back as itself and rejoins fast.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import msgpack
from thespian.actors import Actor, ActorAddress, ActorExitRequest, WakeupMessage

from hyperswarm_hugin.cluster import protocol as p
from hyperswarm_hugin.cluster.remote import system_host
from hyperswarm_hugin.config.cluster import NodeSpec
from hyperswarm_hugin.connection import Connection
from hyperswarm_hugin.dht import DHT
from hyperswarm_hugin.protocol.hugin import GroupKey, KeyPair, fill32
from hyperswarm_hugin.swarm import Hyperswarm, PeerInfo

log = logging.getLogger(__name__)

DRAIN_INTERVAL = 0.05
SAVE_INTERVAL = 5.0
REQUEST_TIMEOUT = 10.0
HEARTBEAT_INTERVAL = 1.0
"""A running node tells its supervisor it is alive this often (a host that dies whole sends no
ChildActorExited: its admin died too)."""


@dataclass(frozen=True)
class StartNode:
    """Supervisor -> NodeActor: run this node; ``data_dir`` None keeps no state on disk."""

    spec: dict[str, Any]
    data_dir: str | None


@dataclass(frozen=True)
class Forward:
    """Supervisor -> NodeActor: a client's request, to be answered to ``client`` directly."""

    client: ActorAddress
    payload: bytes


class NodeHost:
    """The asyncio side of a node: a DHT node or a Hyperswarm, its connections and its state."""

    def __init__(self, spec: NodeSpec, data_dir: str | None, events: queue.Queue[bytes]) -> None:
        self.spec = spec
        self.state_file = Path(data_dir) / f"{spec.name}.msgpack" if data_dir else None
        self.events = events
        self.loop = asyncio.new_event_loop()
        self.dht: DHT | None = None
        self.swarm: Hyperswarm | None = None
        self.conns: dict[int, Connection] = {}
        self.ids = itertools.count(1)
        self.readers: set[asyncio.Task[None]] = set()
        self.routing: list[str] = []  # the last non-empty routing table, as "host:port"
        self.thread = threading.Thread(target=self.loop.run_forever, name=f"node-{spec.name}", daemon=True)

    # ------------------------------------------------------------------ lifecycle (actor thread)

    def start(self) -> dict[str, Any]:
        self.thread.start()
        started: dict[str, Any] = self.call(self._start())
        return started

    def call(self, coro: Any, timeout: float = REQUEST_TIMEOUT) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def stop(self) -> None:
        try:
            self.call(self._stop(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)

    # ------------------------------------------------------------------ on the loop

    def _load(self) -> dict[str, Any]:
        if self.state_file is None or not self.state_file.exists():
            return {}
        try:
            data = msgpack.unpackb(self.state_file.read_bytes(), raw=False)
            return data if isinstance(data, dict) else {}
        except (ValueError, msgpack.UnpackException) as exc:
            log.warning("ignoring unreadable node state %s: %s", self.state_file, exc)
            return {}

    async def save(self) -> None:
        if self.state_file is None:
            return
        state: dict[str, Any] = {"v": 1, "seed": self.spec.seed}
        if self.dht is not None and self.dht.running:
            status = await self.dht.status()
            if status.table:  # an empty table (not yet rejoined) keeps the snapshot it came back with
                self.routing = [f"{h}:{port}" for _, (h, port) in status.table][:32]
        state["routing"] = self.routing
        if self.swarm is not None:
            state["bans"] = [k for k, info in self.swarm.peers.items() if info.banned]
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_bytes(msgpack.packb(state, use_bin_type=True))
        os.replace(tmp, self.state_file)

    async def _start(self) -> dict[str, Any]:
        spec = self.spec
        saved = self._load()
        known = [(host, int(port)) for host, _, port in (str(t).rpartition(":") for t in saved.get("routing", []))
                 if host and port.isdigit()]
        self.routing = [f"{host}:{port}" for host, port in known]
        bootstrap = list(spec.bootstrap)
        if bootstrap:  # a rejoining node also asks the nodes it knew (bootstrappers keep an empty list)
            bootstrap += [address for address in known if address not in bootstrap]
        saved_seed = saved.get("seed")
        if spec.seed_generated and isinstance(saved_seed, str) and len(saved_seed) == 64:
            self.spec = spec = replace(spec, seed=saved_seed)  # the key this node had before
        seed = bytes.fromhex(spec.seed) if spec.seed else os.urandom(32)
        host = spec.host or system_host()  # no host in the file: the address of the system it runs on
        if spec.kind == "dht":
            # infrastructure nodes, reachable at their configured address (as a Testnet's are)
            self.dht = DHT(bootstrap=bootstrap, host=host, port=spec.port, firewalled=False)
            await self.dht.start()
            public_key = None
        else:
            group = GroupKey.from_invite(spec.invite) if spec.invite else \
                GroupKey.from_seed(fill32(bytes.fromhex(spec.group or "")))
            swarm = self.swarm = Hyperswarm(group=group, key_pair=KeyPair.from_seed(seed), bootstrap=bootstrap,
                                            host=host, port=spec.port)
            await swarm.start()
            self.dht = swarm.dht
            for key in saved.get("bans", []):
                if isinstance(key, bytes) and len(key) == 32:
                    swarm.ban(key)
            swarm.on("connection", self._on_connection)
            topics = [bytes.fromhex(t) for t in spec.topics] or [group.topic]
            for topic in topics:
                swarm.join(topic, server=spec.role != "client", client=spec.role != "server")
            public_key = swarm.key_pair.public_key
        await self.save()
        bound_host, bound_port = self.dht.address
        return {"name": spec.name, "kind": spec.kind, "host": bound_host, "port": bound_port, "pid": os.getpid(),
                "public_key": public_key}

    async def _stop(self) -> None:
        await self.save()
        if self.swarm is not None:
            await self.swarm.destroy()
        elif self.dht is not None:
            await self.dht.close()

    def _on_connection(self, conn: Connection, info: PeerInfo) -> None:
        conn_id = next(self.ids)
        self.conns[conn_id] = conn
        self.events.put(p.event("connection", conn=conn_id, remote_public_key=conn.remote_public_key,
                                client=info.client, node=self.spec.name))
        task = self.loop.create_task(self._read(conn_id, conn))
        self.readers.add(task)
        task.add_done_callback(self.readers.discard)

    async def _read(self, conn_id: int, conn: Connection) -> None:
        try:
            async for message in conn:
                self.events.put(p.event("data", conn=conn_id, data=message, node=self.spec.name))
        except ConnectionError:
            pass
        finally:
            self.conns.pop(conn_id, None)
            await conn.close()
            self.events.put(p.event("close", conn=conn_id, node=self.spec.name))

    async def status(self) -> dict[str, Any]:
        assert self.dht is not None
        dht_status = await self.dht.status()
        out: dict[str, Any] = {"name": self.spec.name, "kind": self.spec.kind, "pid": os.getpid(),
                               "host": self.dht.address[0], "port": self.dht.address[1],
                               "dht_size": len(dht_status.table), "system": self.spec.system}
        if self.swarm is not None:
            out |= {"public_key": self.swarm.key_pair.public_key, "peers": len(self.swarm.peers),
                    "connections": len(self.swarm.connections),
                    "topics": [d.topic for d in self.swarm.topics()]}
        return out

    async def handle(self, msg: dict[str, Any]) -> Any:
        kind = msg["type"]
        if kind == "status":
            return await self.status()
        swarm = self.swarm
        if swarm is None:
            raise p.ProtocolError(f"{kind} needs a swarm peer; {self.spec.name} is a DHT node")
        if kind == "join":
            discovery = swarm.join(msg["topic"], server=msg["server"], client=msg["client"])
            await discovery.flushed()
            return True
        if kind == "leave":
            await swarm.leave(msg["topic"])
            return True
        if kind == "join_peer":
            swarm.join_peer(msg["public_key"])
            return True
        if kind == "leave_peer":
            swarm.leave_peer(msg["public_key"])
            return True
        if kind == "ban":
            swarm.ban(msg["public_key"], msg["banned"])
            await self.save()
            return True
        if kind == "peers":
            return [{"public_key": k, "banned": i.banned, "client": i.client, "topics": i.topics,
                     "connected": any(c.remote_public_key == k for c in swarm.connections)}
                    for k, i in swarm.peers.items()]
        conn = self.conns.get(msg["conn"])
        if conn is None:
            raise p.ProtocolError(f"no connection {msg['conn']} on {self.spec.name}")
        if kind == "write":
            conn.write(msg["data"])
            await conn.drain()
        elif kind == "end":
            conn.end()
        else:
            await conn.close()
        return True


class NodeActor(Actor):  # type: ignore[misc]
    """A cluster node: answers requests and pushes its events to subscribers."""

    @staticmethod
    def actorSystemCapabilityCheck(capabilities: dict[str, Any], requirements: dict[str, Any] | None) -> bool:
        """A node asking for ``system`` runs only on the actor system of that name."""
        wanted = (requirements or {}).get("system")
        return wanted is None or capabilities.get("hugin-system") == wanted

    def __init__(self) -> None:
        super().__init__()
        self.host: NodeHost | None = None
        self.events: queue.Queue[bytes] = queue.Queue()
        self.subscribers: list[ActorAddress] = []
        self.supervisor: ActorAddress | None = None
        self.since_save = 0.0
        self.since_heartbeat = 0.0

    def receiveMessage(self, msg: Any, sender: ActorAddress) -> None:
        if isinstance(msg, StartNode):
            self._start(msg, sender)
        elif isinstance(msg, Forward):
            self._request(msg.client, msg.payload)
        elif isinstance(msg, bytes):
            self._request(sender, msg)
        elif isinstance(msg, WakeupMessage):
            self._drain()
        elif isinstance(msg, ActorExitRequest) and self.host is not None:
            self.host.stop()
            self.host = None

    def _start(self, msg: StartNode, sender: ActorAddress) -> None:
        if self.host is not None:
            return
        spec = NodeSpec.from_map(msg.spec)
        self.host = NodeHost(spec, msg.data_dir, self.events)
        try:
            started = self.host.start()
        except Exception as exc:
            log.exception("node %s failed to start", spec.name)
            self.send(sender, p.error(None, f"node {spec.name} failed to start: {exc}"))
            return
        self.supervisor = sender
        self.send(sender, p.encode({"type": "started", **started}))
        self.wakeupAfter(DRAIN_INTERVAL)

    def _request(self, client: ActorAddress, payload: bytes) -> None:
        try:
            msg = p.decode(payload)
        except p.ProtocolError as exc:
            self.send(client, p.error(p.request_id(payload), str(exc)))
            return
        rid = msg["id"]
        if msg["type"] == "subscribe":
            if client not in self.subscribers:
                self.subscribers.append(client)
            self.send(client, p.reply(rid, True))
            return
        if msg["type"] == "unsubscribe":
            self.subscribers = [s for s in self.subscribers if s != client]
            self.send(client, p.reply(rid, True))
            return
        if self.host is None:
            self.send(client, p.error(rid, "the node is not running"))
            return
        try:
            result = self.host.call(self.host.handle(msg))
        except p.ProtocolError as exc:
            self.send(client, p.error(rid, str(exc)))
        except Exception as exc:
            log.info("request %s failed: %r", msg["type"], exc)
            self.send(client, p.error(rid, f"{msg['type']} failed: {exc!r}"))
        else:
            self.send(client, p.reply(rid, result))

    def _drain(self) -> None:
        while True:
            try:
                data = self.events.get_nowait()
            except queue.Empty:
                break
            for address in list(self.subscribers):
                self.send(address, data)
        self.since_save += DRAIN_INTERVAL
        self.since_heartbeat += DRAIN_INTERVAL
        if self.supervisor is not None and self.host is not None and self.since_heartbeat >= HEARTBEAT_INTERVAL:
            self.since_heartbeat = 0.0
            self.send(self.supervisor, p.encode({"type": "alive"}))
        if self.host is not None and self.since_save >= SAVE_INTERVAL:
            self.since_save = 0.0
            try:
                self.host.call(self.host.save(), timeout=5)
            except Exception as exc:
                log.warning("saving node state failed: %r", exc)
        if self.host is not None:
            self.wakeupAfter(DRAIN_INTERVAL)
