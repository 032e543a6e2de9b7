"""RemoteSwarm: drive a cluster node that runs in another process, through the actor system.

Only thespian and msgpack are used on the wire (protocol.py); this class is a convenience."""

from __future__ import annotations

import itertools
import os
import socket
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

import msgpack
from thespian.actors import ActorSystem

from hyperswarm_hugin.cluster import protocol as p

LOG_DEFS: dict[str, Any] = {"version": 1, "disable_existing_loggers": False}
SUPERVISOR = "hyperswarm_hugin.cluster.supervisor.ClusterSupervisor"


class RemoteError(RuntimeError):
    """The node (or the supervisor) answered a request with an error."""


def admin_is_listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        probe.settimeout(1.0)
        return probe.connect_ex((host, port)) == 0


def loopback_only() -> None:
    """Thespian binds every interface and probes for an external address unless told its base
    address: keep its sockets on loopback (a cluster on several hosts sets its own address)."""
    os.environ.setdefault("THESPIAN_BASE_IPADDR", "127.0.0.1")


def use_host(host: str | None) -> None:
    """Make ``host`` this process's address in the actor system (what other hosts send to): set it
    before the first ActorSystem of the process.  None keeps loopback (one host)."""
    if host is not None:
        os.environ["THESPIAN_BASE_IPADDR"] = host
    loopback_only()


def system_host() -> str:
    """The address of the actor system this process belongs to (cluster nodes bind it)."""
    return os.environ.get("THESPIAN_BASE_IPADDR") or "127.0.0.1"


def cluster_system(admin_port: int, host: str | None = None) -> Any:
    """A handle on the running cluster's actor system (never starts one): the system on this
    host's ``admin_port``, the leader's or a member's (requests then reach the leader's
    supervisor through the convention).  ``host``: this host's address, on several hosts."""
    use_host(host)
    if not admin_is_listening(admin_port):
        raise ConnectionError(f"no cluster is listening on admin port {admin_port}")
    # transientUnique: a handle of our own, not the process-wide singleton (which would keep
    # pointing at the first cluster this process talked to)
    return ActorSystem("multiprocTCPBase", {"Admin Port": admin_port}, logDefs=LOG_DEFS, transientUnique=True)


class RemoteSwarm:
    """One node of a running cluster: requests (blocking, with a timeout) and its events."""

    def __init__(self, system: Any, supervisor: Any, node: str, timeout: float) -> None:
        self.system = system
        self.supervisor = supervisor
        self.node = node
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._events: deque[dict[str, Any]] = deque()

    @classmethod
    def connect(cls, admin_port: int, node: str, timeout: float = 15.0, host: str | None = None) -> RemoteSwarm:
        """Node ``node`` through the actor system on this host's ``admin_port`` (``host``: this
        host's address when the cluster spans several hosts)."""
        system = cluster_system(admin_port, host)
        supervisor = system.createActor(SUPERVISOR, globalName="hugin-cluster")
        remote = cls(system, supervisor, node, timeout)
        remote.status()  # fails clearly if there is no such node
        return remote

    @classmethod
    def connect_cluster(cls, admin_port: int, timeout: float = 15.0, host: str | None = None) -> RemoteSwarm:
        """A handle on the cluster as a whole (``nodes()``, ``systems()``); ``for_node`` picks one."""
        system = cluster_system(admin_port, host)
        return cls(system, system.createActor(SUPERVISOR, globalName="hugin-cluster"), "", timeout)

    def for_node(self, node: str) -> RemoteSwarm:
        return RemoteSwarm(self.system, self.supervisor, node, self.timeout)

    def nodes(self) -> list[dict[str, Any]]:
        """Every node of the cluster: name, running, restarts, and where it runs."""
        return list(self.request("nodes"))

    def systems(self) -> list[dict[str, Any]]:
        """Every actor system of the convention: name, host, admin port, up."""
        return list(self.request("systems"))

    def send_raw(self, payload: bytes) -> dict[str, Any]:
        """Send raw bytes to the supervisor and return the next reply or error map."""
        self.system.tell(self.supervisor, payload)
        return self._answer(None)

    def request(self, kind: str, **fields: Any) -> Any:
        rid = next(self._ids)
        self.system.tell(self.supervisor, p.encode({"type": kind, "id": rid, "node": self.node, **fields}))
        answer = self._answer(rid)
        if answer["type"] == "error":
            raise RemoteError(answer["error"])
        return answer["result"]

    def _answer(self, rid: int | None) -> dict[str, Any]:
        end = time.monotonic() + self.timeout
        while (left := end - time.monotonic()) > 0:
            data = self.system.listen(min(left, 0.5))
            if not isinstance(data, bytes):
                continue
            msg = msgpack.unpackb(data, raw=False)
            if msg.get("type") == "event":
                self._events.append(msg)
            elif rid is None or msg.get("id") == rid:
                return dict(msg)
        raise TimeoutError(f"no answer from node {self.node!r} in {self.timeout} s")

    def status(self) -> dict[str, Any]:
        return dict(self.request("status"))

    def join(self, topic: bytes, server: bool = True, client: bool = True) -> None:
        self.request("join", topic=topic, server=server, client=client)

    def leave(self, topic: bytes) -> None:
        self.request("leave", topic=topic)

    def join_peer(self, public_key: bytes) -> None:
        self.request("join_peer", public_key=public_key)

    def leave_peer(self, public_key: bytes) -> None:
        self.request("leave_peer", public_key=public_key)

    def ban(self, public_key: bytes, banned: bool = True) -> None:
        """Ban (or un-ban) a peer on this node; bans survive the node's restarts."""
        self.request("ban", public_key=public_key, banned=banned)

    def peers(self) -> list[dict[str, Any]]:
        return list(self.request("peers"))

    def subscribe(self) -> None:
        """Receive this node's connection / data / close events (see :meth:`events`)."""
        self.request("subscribe")

    def write(self, conn: int, data: bytes) -> None:
        self.request("write", conn=conn, data=data)

    def end(self, conn: int) -> None:
        self.request("end", conn=conn)

    def close_connection(self, conn: int) -> None:
        self.request("close", conn=conn)

    def events(self, timeout: float) -> Iterator[dict[str, Any]]:
        """Events as they arrive, until ``timeout`` seconds pass without one."""
        while True:
            if self._events:
                yield self._events.popleft()
                continue
            data = self.system.listen(timeout)
            if data is None:
                return
            if isinstance(data, bytes):
                msg = msgpack.unpackb(data, raw=False)
                if msg.get("type") == "event":
                    yield msg
