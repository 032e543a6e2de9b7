"""ClusterSupervisor: starts one NodeActor (one process) per configured node and restarts it
when it dies, with the same key seed and port.  Registered as ``hugin-cluster``; clients send
it msgpack requests (protocol.py), which it forwards to the named node."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import msgpack
from thespian.actors import (
    Actor,
    ActorAddress,
    ActorExitRequest,
    ActorSystemConventionUpdate,
    ChildActorExited,
    WakeupMessage,
)

from hyperswarm_hugin.cluster import protocol as p
from hyperswarm_hugin.cluster.node import Forward, NodeActor, StartNode

log = logging.getLogger(__name__)

GLOBAL_NAME = "hugin-cluster"
RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 10.0
START_DEADLINE = 60.0
"""The launcher hears which nodes run once all do, or after this many seconds at the latest."""
SILENCE_LIMIT = 12.0
"""A running node not heard from for this long (heartbeats every second; a request can hold its
actor up to 10 s) is taken for dead: its whole host went, and with it the ChildActorExited."""
START_LIMIT = 15.0
"""A node that has not said "started" this long after its createActor is started again (a create
sent to a system that died meanwhile is never answered)."""
HEALTH = ("health",)
"""The wakeup payload of the supervisor's once-a-second look at its nodes' heartbeats."""
LEADER_CAPABILITY = "hugin-supervisor"
"""Set on the system started with the cluster file: the supervisor runs there only, so a client of
another system of the convention is sent to it (Thespian forwards a createActor that the local
system cannot host to one that can, and that system's admin knows the global name)."""


@dataclass(frozen=True)
class StartCluster:
    """Launcher -> supervisor: the nodes (NodeSpec maps) and the data directory."""

    nodes: list[dict[str, Any]]
    data_dir: str | None
    system: str = "a"  # the launcher's system: its name, host and admin port (for `systems`)
    host: str = "127.0.0.1"
    admin_port: int = 0


@dataclass
class NodeRecord:
    spec: dict[str, Any]
    address: ActorAddress | None = None
    info: dict[str, Any] | None = None
    restarts: int = 0
    failures: int = 0  # exits since it last started: the restart delay doubles with them
    last_seen: float = 0.0  # time.monotonic() of its last "started" or "alive"
    spawned: float = 0.0  # time.monotonic() of its last createActor


class AdminProbe(Actor):  # type: ignore[misc]
    """Answers with its parent's pid: the actor system's admin process (see run_node.py)."""

    def receiveMessage(self, msg: Any, sender: ActorAddress) -> None:
        if msg == "admin-pid":
            self.send(sender, os.getppid())


class ClusterSupervisor(Actor):  # type: ignore[misc]
    @staticmethod
    def actorSystemCapabilityCheck(capabilities: dict[str, Any], requirements: dict[str, Any] | None) -> bool:
        return bool(capabilities.get(LEADER_CAPABILITY))

    def __init__(self) -> None:
        super().__init__()
        self.systems: dict[str, dict[str, Any]] = {}  # admin address text -> {name, host, admin_port, up}
        self.nodes: dict[str, NodeRecord] = {}
        self.children: list[tuple[ActorAddress, str]] = []  # addresses compare with ==, not by str()
        self.data_dir: str | None = None
        self.launcher: ActorAddress | None = None
        self.stopping = False

    def receiveMessage(self, msg: Any, sender: ActorAddress) -> None:
        if isinstance(msg, StartCluster):
            self._start(msg, sender)
        elif isinstance(msg, ChildActorExited):
            self._exited(msg.childAddress)
        elif isinstance(msg, WakeupMessage):
            if isinstance(msg.payload, str) and not self.stopping:
                if self.nodes[msg.payload].address is None:  # not started meanwhile (a system joined)
                    self._spawn(msg.payload)
            elif msg.payload == HEALTH and not self.stopping:
                self._check_heartbeats()
                self.wakeupAfter(1.0, payload=HEALTH)
            elif msg.payload is None:
                self._report_started()
        elif isinstance(msg, ActorSystemConventionUpdate):
            self._system_changed(msg)
        elif isinstance(msg, ActorExitRequest):
            self.stopping = True
        elif isinstance(msg, bytes):
            name = self._name_of(sender)
            if name is not None:
                self._from_node(name, msg)
            else:
                self._client(sender, msg)

    def _start(self, msg: StartCluster, sender: ActorAddress) -> None:
        self.launcher = sender
        self.data_dir = msg.data_dir
        self.systems = {"leader": {"name": msg.system, "host": msg.host, "admin_port": msg.admin_port, "up": True}}
        self.notifyOnSystemRegistrationChanges(True)
        for spec in msg.nodes:
            self.nodes[spec["name"]] = NodeRecord(spec)
            self._spawn(spec["name"])
        self.wakeupAfter(START_DEADLINE, payload=None)
        self.wakeupAfter(1.0, payload=HEALTH)

    def _report_started(self) -> None:
        if self.launcher is None:
            return
        self.send(self.launcher, p.encode({"type": "cluster-started", "nodes": self._node_list()}))
        self.launcher = None

    def _system_changed(self, msg: ActorSystemConventionUpdate) -> None:
        """A member system joined the convention or left it (or was declared dead)."""
        capabilities = msg.remoteCapabilities or {}
        name = capabilities.get("hugin-system")
        self.systems[str(msg.remoteAdminAddress)] = {"name": name, "host": capabilities.get("hugin-host"),
                                                     "admin_port": capabilities.get("Admin Port"),
                                                     "up": bool(msg.remoteAdded)}
        log.warning("actor system %s (%s) %s the convention", name, msg.remoteAdminAddress,
                    "joined" if msg.remoteAdded else "left")
        if not msg.remoteAdded or self.stopping:
            return
        # Its nodes that do not run: start them now.  A create still pending was sent before this
        # system was known (it fails) or to its dead former self (never answered): drop it.
        for node, record in self.nodes.items():
            if record.spec.get("system") == name and record.info is None:
                if record.address is not None:
                    self.send(record.address, ActorExitRequest())
                    self.children = [(a, n) for a, n in self.children if a != record.address]
                self._spawn(node)

    def _node_list(self) -> list[dict[str, Any]]:
        return [{"name": name, "kind": r.spec.get("kind"), "running": r.info is not None, "restarts": r.restarts,
                 "system": r.spec.get("system"), **(r.info or {})} for name, r in self.nodes.items()]

    def _spawn(self, name: str) -> None:
        record = self.nodes[name]
        system = record.spec.get("system")
        address = self.createActor(NodeActor, targetActorRequirements={"system": system} if system else None)
        record.address = address
        record.info = None
        record.spawned = time.monotonic()
        self.children.append((address, name))
        self.send(address, StartNode(record.spec, self.data_dir))

    def _name_of(self, address: ActorAddress) -> str | None:
        return next((name for child, name in self.children if child == address), None)

    def _check_heartbeats(self) -> None:
        now = time.monotonic()
        for name, record in self.nodes.items():
            if record.address is None:
                continue
            if record.info is not None and now - record.last_seen > SILENCE_LIMIT:
                log.warning("node %s silent for %.0f s (its host gone?); starting it again", name,
                            now - record.last_seen)
            elif record.info is None and now - record.spawned > START_LIMIT:
                log.warning("node %s did not start in %.0f s; trying again", name, START_LIMIT)
            else:
                continue
            self.send(record.address, ActorExitRequest())  # should it run after all
            self._exited(record.address)

    def _exited(self, address: ActorAddress) -> None:
        name = self._name_of(address)
        self.children = [(a, n) for a, n in self.children if a != address]
        if name is None or self.stopping:
            return
        self.nodes[name].info = None
        record = self.nodes[name]
        record.address = None
        record.restarts += 1
        record.failures += 1
        delay = min(RESTART_DELAY * 2 ** (record.failures - 1), MAX_RESTART_DELAY)
        log.warning("node %s exited; restarting it in %.1f s", name, delay)
        self.wakeupAfter(delay, payload=name)

    def _from_node(self, name: str, data: bytes) -> None:
        record = self.nodes[name]
        try:
            msg = msgpack.unpackb(data, raw=False)
        except (ValueError, msgpack.UnpackException):
            return
        if isinstance(msg, dict) and msg.get("type") == "alive":
            record.last_seen = time.monotonic()
        elif isinstance(msg, dict) and msg.get("type") == "started":
            record.info = {k: v for k, v in msg.items() if k not in ("v", "type")}
            record.last_seen = time.monotonic()
            record.failures = 0
            if all(r.info for r in self.nodes.values()):
                self._report_started()
        elif isinstance(msg, dict) and msg.get("type") == "error":
            log.error("node %s: %s", name, msg.get("error"))
            if record.address is not None:
                self.send(record.address, ActorExitRequest())  # its exit brings a fresh one

    def _client(self, client: ActorAddress, data: bytes) -> None:
        try:
            msg = p.decode(data)
        except p.ProtocolError as exc:
            self.send(client, p.error(p.request_id(data), str(exc)))
            return
        rid = msg["id"]
        if msg["type"] == "nodes":
            self.send(client, p.reply(rid, self._node_list()))
            return
        if msg["type"] == "systems":
            self.send(client, p.reply(rid, list(self.systems.values())))
            return
        name = msg.get("node")
        if name is None:
            self.send(client, p.error(rid, f"{msg['type']} needs the field 'node' (which node)"))
            return
        record = self.nodes.get(name)
        if record is None:
            self.send(client, p.error(rid, f"no node named {name!r}"))
        elif record.address is None or record.info is None:
            self.send(client, p.error(rid, f"node {name!r} is restarting"))
        else:
            self.send(record.address, Forward(client, data))
