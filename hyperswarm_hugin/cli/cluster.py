"""``cluster`` and ``status``: supervised node processes under a Thespian actor system."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

from hyperswarm_hugin import event_loop
from hyperswarm_hugin.cli.output import emit, metrics_fields, run_until_stopped
from hyperswarm_hugin.config.settings import (
    SettingsError,
)

if TYPE_CHECKING:
    from hyperswarm_hugin.metrics import MetricsServer

log = logging.getLogger(__name__)


def run_cluster(config_path: str | None, admin_port: int, system: str, convention: str | None,
                timeout: float | None, metrics_at: tuple[str, int] | None = None, host: str | None = None) -> None:
    """A Thespian multiprocTCPBase system on ``admin_port`` and, with a config, its nodes; ``host``:
    this system's address when the cluster spans several hosts (default: loopback only)."""
    from thespian.actors import ActorExitRequest, ActorSystem

    from hyperswarm_hugin.cluster import protocol as p
    from hyperswarm_hugin.cluster.remote import LOG_DEFS, admin_is_listening, system_host, use_host
    from hyperswarm_hugin.cluster.supervisor import (
        GLOBAL_NAME,
        LEADER_CAPABILITY,
        START_DEADLINE,
        AdminProbe,
        ClusterSupervisor,
        StartCluster,
    )
    from hyperswarm_hugin.config.cluster import load_cluster

    config = load_cluster(config_path) if config_path else None
    use_host(host)
    if admin_is_listening(admin_port):
        raise SettingsError(f"admin port {admin_port} is in use")
    capabilities: dict[str, Any] = {"Admin Port": admin_port, "hugin-system": system, "hugin-host": system_host(),
                                    LEADER_CAPABILITY: config is not None}
    # Thespian's convention: members name the leader's admin address; the leader names its own.
    if convention:
        host, _, port = convention.rpartition(":")
        capabilities["Convention Address.IPv4"] = (host, int(port))
    else:
        capabilities["Convention Address.IPv4"] = (system_host(), admin_port)
    def stop_now(signum: int, frame: Any) -> None:
        raise SystemExit(0)  # unwinds to the finally below: the actor system is always shut down

    previous = signal.signal(signal.SIGTERM, stop_now)
    asys = ActorSystem("multiprocTCPBase", capabilities, logDefs=LOG_DEFS)
    admin_pid: int | None = None
    metrics: MetricsServer | None = None
    try:
        probe = asys.createActor(AdminProbe)
        admin_pid = asys.ask(probe, "admin-pid", 30)
        asys.tell(probe, ActorExitRequest())
        if config is not None:
            supervisor = asys.createActor(ClusterSupervisor, globalName=GLOBAL_NAME)
            asys.tell(supervisor, StartCluster([n.to_map() for n in config.nodes], config.data_dir, system,
                                               system_host(), admin_port))
            nodes: list[dict[str, Any]] | None = None
            while nodes is None:
                answer = asys.listen(START_DEADLINE + 30)
                if not isinstance(answer, bytes):
                    raise RuntimeError("the cluster's supervisor did not report")
                message = p.decode_event(answer)
                if message.get("type") == "cluster-started":
                    nodes = message["nodes"]
            if metrics_at is not None:
                from hyperswarm_hugin.metrics import cluster_collector, serve_metrics

                metrics = serve_metrics(*metrics_at, cluster_collector(admin_port))
            emit("cluster", adminPort=admin_port, system=system, **metrics_fields(metrics),
                 nodes=[{"name": n["name"], "kind": n.get("kind"), "running": n["running"], "port": n.get("port"),
                         "pid": n.get("pid"), "publicKey": n["public_key"].hex() if n.get("public_key") else None}
                        for n in nodes])
        else:
            emit("system", adminPort=admin_port, system=system, convention=convention, host=system_host())
        event_loop.run(run_until_stopped(timeout, _nothing))
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if metrics is not None:
            metrics.close()
        asys.shutdown()
        if isinstance(admin_pid, int):
            end_lingering_admin(admin_pid)
        signal.signal(signal.SIGTERM, previous)
        emit("stopped")


def end_lingering_admin(pid: int, grace: float = 5.0) -> None:
    """Thespian's admin process can outlive shutdown() (after one of its actors was killed -9, or
    one it hosted for a convention leader that left); it is ours (AdminProbe's parent): end it by pid."""
    import time

    end = time.monotonic() + grace
    while time.monotonic() < end:
        if not process_alive(pid):
            return
        time.sleep(0.05)
    log.warning("the actor system's admin (pid %d) outlived shutdown; ending it", pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        time.sleep(1.0)
        os.kill(pid, signal.SIGKILL)


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (ended, its parent, often init, not yet reaping) does not."""
    if not os.path.isdir("/proc"):  # no /proc here: a zombie counts as running
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


async def _nothing() -> None:
    return None


def print_status(admin_port: int, as_json: bool, host: str | None = None) -> None:
    from hyperswarm_hugin.cluster.remote import RemoteError, RemoteSwarm

    remote = RemoteSwarm.connect_cluster(admin_port, host=host)
    rows = []
    for node in remote.nodes():
        row = {"name": node["name"], "kind": node.get("kind"), "running": node["running"],
               "restarts": node["restarts"], "system": node.get("system")}
        if node["running"]:
            try:
                status = remote.for_node(node["name"]).status()
            except (RemoteError, TimeoutError) as exc:
                row["error"] = str(exc)
            else:
                row |= {k: (v.hex() if isinstance(v, bytes) else v) for k, v in status.items()}
                row["topics"] = [t.hex() for t in status.get("topics", [])]
        rows.append(row)
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    print_table([{k: str(v) for k, v in s.items()} for s in remote.systems()],
                ("name", "host", "admin_port", "up"))
    print()
    columns = ("name", "kind", "system", "running", "restarts", "pid", "host", "port", "dht_size", "peers",
               "connections", "topics")
    print_table([{c: str(len(r[c]) if c == "topics" and c in r else r.get(c, "")) for c in columns} for r in rows],
                columns)


def print_table(rows: list[dict[str, str]], columns: tuple[str, ...]) -> None:
    """``rows`` as text columns under a header line."""
    table = [[r.get(c, "") for c in columns] for r in rows]
    widths = [max([len(c), *(len(t[i]) for t in table)]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for t in table:
        print("  ".join(v.ljust(w) for v, w in zip(t, widths, strict=True)))


def print_systems(admin_port: int, host: str | None) -> None:
    """The convention's actor systems as the supervisor knows them, one JSON array."""
    from hyperswarm_hugin.cluster.remote import RemoteSwarm

    sys.stdout.write(json.dumps(RemoteSwarm.connect_cluster(admin_port, host=host).systems()) + "\n")
