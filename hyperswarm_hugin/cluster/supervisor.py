"""ClusterSupervisor: starts one NodeActor (one process) per configured node and restarts it
when it dies, with the same key seed and port.  Registered as ``hugin-cluster``; clients send
it msgpack requests (protocol.py), which it forwards to the named node."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import msgpack
from thespian.actors import Actor, ActorAddress, ActorExitRequest, ChildActorExited, WakeupMessage

from hyperswarm_hugin.cluster import protocol as p
from hyperswarm_hugin.cluster.node import Forward, NodeActor, StartNode

log = logging.getLogger(__name__)

GLOBAL_NAME = "hugin-cluster"
RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 10.0
START_DEADLINE = 60.0
"""The launcher hears which nodes run once all do, or after this many seconds at the latest."""


@dataclass(frozen=True)
class StartCluster:
    """Launcher -> supervisor: the nodes (NodeSpec maps) and the data directory."""

    nodes: list[dict[str, Any]]
    data_dir: str | None


@dataclass
class NodeRecord:
    spec: dict[str, Any]
    address: ActorAddress | None = None
    info: dict[str, Any] | None = None
    restarts: int = 0
    failures: int = 0  # exits since it last started: the restart delay doubles with them


class AdminProbe(Actor):  # type: ignore[misc]
    """Answers with its parent's pid: the actor system's admin process (see run_node.py)."""

    def receiveMessage(self, msg: Any, sender: ActorAddress) -> None:
        if msg == "admin-pid":
            self.send(sender, os.getppid())


class ClusterSupervisor(Actor):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
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
                self._spawn(msg.payload)
            elif msg.payload is None:
                self._report_started()
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
        for spec in msg.nodes:
            self.nodes[spec["name"]] = NodeRecord(spec)
            self._spawn(spec["name"])
        self.wakeupAfter(START_DEADLINE, payload=None)

    def _report_started(self) -> None:
        if self.launcher is None:
            return
        self.send(self.launcher, p.encode({"type": "cluster-started", "nodes": self._node_list()}))
        self.launcher = None

    def _node_list(self) -> list[dict[str, Any]]:
        return [{"name": name, "kind": r.spec.get("kind"), "running": r.info is not None, "restarts": r.restarts,
                 "system": r.spec.get("system"), **(r.info or {})} for name, r in self.nodes.items()]

    def _spawn(self, name: str) -> None:
        record = self.nodes[name]
        system = record.spec.get("system")
        address = self.createActor(NodeActor, targetActorRequirements={"system": system} if system else None)
        record.address = address
        record.info = None
        self.children.append((address, name))
        self.send(address, StartNode(record.spec, self.data_dir))

    def _name_of(self, address: ActorAddress) -> str | None:
        return next((name for child, name in self.children if child == address), None)

    def _exited(self, address: ActorAddress) -> None:
        name = self._name_of(address)
        self.children = [(a, n) for a, n in self.children if a != address]
        if name is None or self.stopping:
            return
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
        if isinstance(msg, dict) and msg.get("type") == "started":
            record.info = {k: v for k, v in msg.items() if k not in ("v", "type")}
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
