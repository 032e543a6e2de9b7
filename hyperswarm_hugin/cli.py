"""The command line: ``hyperswarm-hugin``, ``python -m hyperswarm_hugin``, or ``python run_node.py`` in a checkout.

    hyperswarm-hugin dht --host 127.0.0.1 --port P --bootstrap 127.0.0.1:Q[,...]
    hyperswarm-hugin testnet --size N --host 127.0.0.1 [--port P]
    hyperswarm-hugin peer --bootstrap 127.0.0.1:P[,...] --group HEX [--topic HEX]
                          [--role server|client|both] [--mode echo|sink|source|idle] [--bytes N]
                          [--host 0.0.0.0] [--relay-through HEX[,HEX]]
    hyperswarm-hugin relay --bootstrap 127.0.0.1:P[,...] [--host H --port P] [--seed HEX]
    hyperswarm-hugin cluster --config FILE --admin-port 1900 [--system NAME] [--convention HOST:PORT]
                             [--host IP]
    hyperswarm-hugin status --admin-port 1900 [--json | --systems] [--host IP]
    hyperswarm-hugin demo

stdout carries one JSON object per line (the first says where the node
listens); diagnostics go to stderr.  dht, peer and cluster take ``--metrics-port P
[--metrics-host H]`` to serve Prometheus metrics on /metrics (docs/metrics.md).  A node stops cleanly on SIGINT, SIGTERM
or after ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from hyperswarm_hugin import DHT, Connection, GroupKey, Hyperswarm, KeyPair, PeerInfo, Testnet, event_loop, fill32
from hyperswarm_hugin.actors.messages import DHTStatus
from hyperswarm_hugin.blind_relay import BlindRelayServer
from hyperswarm_hugin.config.settings import (
    DHTSettings,
    PeerSettings,
    RelaySettings,
    SettingsError,
    TestnetSettings,
    load_toml,
    merge,
    relay_keys,
)
from hyperswarm_hugin.local_addresses import local_addresses
from hyperswarm_hugin.protocol.dht.events import DHTEvent, NodeBecamePersistent, NodeReady
from hyperswarm_hugin.protocol.encoding import Address

if TYPE_CHECKING:
    from hyperswarm_hugin.metrics import MetricsServer

log = logging.getLogger(__name__)

CLEAN_CLOSE_WAIT = 10.0


def emit(event: str, **fields: Any) -> None:
    """Write one JSON event line to stdout."""
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def event_fields(ev: DHTEvent) -> tuple[str, dict[str, Any]] | None:
    if isinstance(ev, NodeReady):
        return "ready", {"id": ev.id.hex() if ev.id else None, "firewalled": ev.firewalled,
                         "ephemeral": ev.ephemeral}
    if isinstance(ev, NodeBecamePersistent):
        return "persistent", {"id": ev.id.hex(), "host": ev.address[0], "port": ev.address[1]}
    return None


async def run_until_stopped(timeout: float | None, body: Callable[[], Awaitable[None]]) -> None:
    """Run ``body`` then wait for SIGINT/SIGTERM or the timeout."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await body()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def run_dht(settings: DHTSettings) -> None:
    node = DHT(bootstrap=settings.bootstrap, host=settings.host, port=settings.port,
               mode=settings.mode, firewalled=settings.firewalled)

    def on_event(ev: DHTEvent) -> None:
        found = event_fields(ev)
        if found:
            emit(found[0], **found[1])

    metrics: MetricsServer | None = None

    async def body() -> None:
        nonlocal metrics
        await node.start()
        host, port = node.address
        metrics = start_metrics(settings, dht=node)
        emit("listening", host=host, port=port, id=node.expected_id.hex(), **metrics_fields(metrics))
        node.on_event(on_event)

    try:
        await run_until_stopped(settings.timeout, body)
        if node._runtime is not None:
            status = await node.status()
            emit("stats", **status.stats, table_size=len(status.table))
    finally:
        if metrics is not None:
            metrics.close()
        await node.close()
        emit("close")


async def run_testnet(settings: TestnetSettings) -> None:
    net: Testnet | None = None

    async def body() -> None:
        nonlocal net
        net = await Testnet.create(settings.size, settings.host, settings.port)
        emit("testnet", bootstrap=[f"{h}:{p}" for h, p in net.bootstrap],
             nodes=[{"host": n.address[0], "port": n.address[1], "id": n.expected_id.hex()}
                    for n in net.nodes])

    try:
        await run_until_stopped(settings.timeout, body)
    finally:
        if net is not None:
            await net.close()
        emit("close")


SOURCE_POOL = 4 * 1024 * 1024


def group_of(settings: PeerSettings) -> GroupKey:
    """``--group HEX``: the group seed's bytes, filled to 32 as the Hugin apps fill them;
    ``--invite TEXT``: an app invite, filled as text (GroupKey.from_invite)."""
    if settings.invite is not None:
        return GroupKey.from_invite(settings.invite)
    assert settings.group is not None
    return GroupKey.from_seed(fill32(bytes.fromhex(settings.group)))


async def serve_connection(conn: Connection, info: PeerInfo, settings: PeerSettings) -> None:
    remote = conn.remote_public_key.hex()
    received = 0
    sent_hash, back_hash = hashlib.sha256(), hashlib.sha256()
    writing: asyncio.Task[None] | None = None

    async def write_source() -> None:
        pool = os.urandom(SOURCE_POOL + 16384)  # slices of one random pool: os.urandom is slow
        with contextlib.suppress(ConnectionError):  # the reader reports it
            for offset in range(0, settings.bytes, 16384):
                start = (offset * 7919) % SOURCE_POOL
                chunk = pool[start:start + min(16384, settings.bytes - offset)]
                sent_hash.update(chunk)
                conn.write(chunk)
                await conn.drain()
            conn.end()  # an echo peer sends it all back, then ends too

    try:
        if settings.mode == "source" and settings.bytes:
            # Read while writing: an echo peer stops reading once we stop taking its echo.
            writing = asyncio.ensure_future(write_source())
        async for message in conn:
            received += len(message)
            if settings.mode == "echo":
                conn.write(message)
                await conn.drain()
            elif settings.mode == "source" and settings.bytes:
                back_hash.update(message)
                if received == settings.bytes:  # all of it came back: say whether it is the same
                    emit("echoed", remotePublicKey=remote, bytes=received,
                         ok=sent_hash.digest() == back_hash.digest())
        # The peer ended: end ours once all we wrote is out, and let the stream close cleanly
        # (closing at once would destroy it under the peer's last reads).
        conn.end()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(conn.wait_closed(), CLEAN_CLOSE_WAIT)
    except ConnectionError as exc:
        emit("error", remotePublicKey=remote, message=str(exc),
             cause=repr(exc.__cause__) if exc.__cause__ is not None else None)
    finally:
        if writing is not None and not writing.done():
            writing.cancel()
        if settings.mode == "sink":
            emit("bytes", remotePublicKey=remote, bytesIn=received)
        await conn.close()


async def report_direct(conn: Connection) -> None:
    """A ``direct`` line when this relayed connection moves to a punched path (hyperdht 6.34):
    ``afterMs`` since it was handed out, ``remoteAddress`` where its packets go now."""
    start = asyncio.get_running_loop().time()
    try:
        await conn.wait_direct()
    except ConnectionError:  # closed while relayed
        return
    address = conn.remote_address
    emit("direct", remotePublicKey=conn.remote_public_key.hex(), holepunched=conn.holepunched,
         remoteAddress=f"{address[0]}:{address[1]}" if address else None,
         afterMs=round((asyncio.get_running_loop().time() - start) * 1000))


def nat_view(status: DHTStatus, bound: Address) -> dict[str, Any]:
    """What our NAT looks like from the DHT: ``firewalled``, ``nat`` (open / consistent /
    random / unknown, from the main socket's samples), ``publicAddress`` and the local
    ``addresses`` a handshake advertises."""
    public = status.public_address
    if not status.firewalled:
        nat = "open"
    elif public is None:
        nat = "unknown"
    else:
        nat = "random" if public[1] == 0 else "consistent"
    return {
        "firewalled": status.firewalled,
        "nat": nat,
        "publicAddress": f"{public[0]}:{public[1]}" if public else None,
        "addresses": [f"{h}:{p}" for h, p in local_addresses(bound)],
    }


async def run_peer(settings: PeerSettings) -> None:
    group = group_of(settings)
    topic = bytes.fromhex(settings.topic) if settings.topic else group.topic
    key_pair = KeyPair.from_seed(bytes.fromhex(settings.seed)) if settings.seed else None
    relays = relay_keys(settings.relay_through)
    swarm = Hyperswarm(group=group, key_pair=key_pair, bootstrap=settings.bootstrap, host=settings.host,
                       port=settings.port, relay_through=relays or None)
    tasks: set[asyncio.Task[None]] = set()

    def on_connection(conn: Connection, info: PeerInfo) -> None:
        remote = conn.remote_public_key.hex()
        ms = round(conn.connect_seconds * 1000) if conn.connect_seconds is not None else None
        emit("connection", remotePublicKey=remote, client=info.client, connectMs=ms, relayed=conn.relayed,
             holepunched=conn.holepunched)
        conn.add_close_callback(lambda: emit("close", remotePublicKey=remote))
        jobs = [serve_connection(conn, info, settings)]
        if conn.relayed:
            jobs.append(report_direct(conn))
        for job in jobs:
            task = asyncio.ensure_future(job)
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    swarm.on("connection", on_connection)
    swarm.on("refused", lambda key, reason: emit("refused", remotePublicKey=key.hex() if key else None,
                                                 reason=reason))
    swarm.on("connect_error", lambda key, exc: emit("connect-error", remotePublicKey=key.hex(), code=exc.code,
                                                    reason=getattr(exc, "reason", exc.code), message=str(exc)))

    metrics: MetricsServer | None = None

    async def body() -> None:
        nonlocal metrics
        await swarm.start()
        metrics = start_metrics(settings, swarm=swarm)
        discovery = swarm.join(topic, server=settings.role != "client", client=settings.role != "server")
        await discovery.flushed()
        status = await swarm.dht.status()
        emit("ready", publicKey=swarm.key_pair.public_key.hex(), topic=topic.hex(),
             host=swarm.dht.address[0], port=swarm.dht.address[1], **nat_view(status, swarm.dht.address),
             **metrics_fields(metrics))

    try:
        await run_until_stopped(settings.timeout, body)
    finally:
        if metrics is not None:
            metrics.close()
        for task in list(tasks):
            task.cancel()
        await swarm.destroy()
        emit("stopped")


def start_metrics(settings: DHTSettings | PeerSettings, *, dht: DHT | None = None,
                  swarm: Hyperswarm | None = None) -> MetricsServer | None:
    """``--metrics-port``: serve /metrics on it (on ``--metrics-host``, loopback by default).
    prometheus_client is imported only then (it costs an idle peer ~1 MB)."""
    if settings.metrics_port is None:
        return None
    from hyperswarm_hugin.metrics import NodeCollector, serve_metrics

    collector = NodeCollector(asyncio.get_running_loop(), dht=dht, swarm=swarm)
    return serve_metrics(settings.metrics_host, settings.metrics_port, collector)


def metrics_fields(metrics: MetricsServer | None) -> dict[str, Any]:
    """``metrics``: where /metrics is served, for the first JSON line (only with --metrics-port)."""
    return {"metrics": f"http://{metrics.address[0]}:{metrics.address[1]}/metrics"} if metrics else {}


async def run_relay(settings: RelaySettings) -> None:
    """A blind relay for anyone: its own DHT node (persistent once reachable) and a server whose
    connections are relay sessions."""
    node = DHT(bootstrap=settings.bootstrap, host=settings.host, port=settings.port, firewalled=False)
    key_pair = KeyPair.from_seed(bytes.fromhex(settings.seed)) if settings.seed else KeyPair.random()
    relay: BlindRelayServer | None = None

    async def body() -> None:
        nonlocal relay
        await node.start()
        await node.ready()
        relay = BlindRelayServer(node.runtime)
        await node.listen(key_pair, on_connection=relay.accept)
        host, port = node.address
        emit("relay", publicKey=key_pair.public_key.hex(), host=host, port=port)

    try:
        await run_until_stopped(settings.timeout, body)
    finally:
        if relay is not None:
            emit("relay-stats", **vars(relay.stats))
            await relay.close()
        await node.close()
        emit("stopped")


async def run_demo(peers: int, timeout: float) -> None:
    """A local testnet and a few swarm peers of one Hugin group: they find each other on the
    group's topic and greet each other over their encrypted connections."""
    async with await Testnet.create(5) as net:
        emit("testnet", bootstrap=[f"{h}:{p}" for h, p in net.bootstrap])
        group = GroupKey.from_invite(os.urandom(16).hex())
        swarms = [Hyperswarm(group=group, bootstrap=net.bootstrap) for _ in range(peers)]
        names = {s.key_pair.public_key: f"peer{i}" for i, s in enumerate(swarms)}
        greeted: asyncio.Queue[None] = asyncio.Queue()

        async def greet(me: str, conn: Connection) -> None:
            conn.write(f"hello from {me}".encode())
            message = await conn.read()
            if not message:  # a duplicate connection, closed by the swarm: the other one greets
                return
            emit("message", **{"to": me, "from": names.get(conn.remote_public_key, "?"), "text": message.decode()})
            greeted.put_nowait(None)

        try:
            for s in swarms:
                await s.start()
                me = names[s.key_pair.public_key]
                s.on("connection", lambda conn, info, me=me: asyncio.ensure_future(greet(me, conn)))
                emit("peer", name=me, publicKey=s.key_pair.public_key.hex())
            for s in swarms:
                s.join(group.topic)
            for _ in range(peers * (peers - 1)):
                await asyncio.wait_for(greeted.get(), timeout)
            emit("mesh", peers=peers, connections=sum(len(s.connections) for s in swarms))
        finally:
            for s in swarms:
                await s.destroy()
    emit("close")


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


def build_parser(prog: str = "hyperswarm-hugin") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="a TOML file; flags override it")
    parser.add_argument("--log-level", default="WARNING", help="stderr log level (default WARNING)")
    sub = parser.add_subparsers(dest="command", required=True)

    dht = sub.add_parser("dht", help="run one DHT node")
    dht.add_argument("--host", help="IPv4 address to bind (default 127.0.0.1)")
    dht.add_argument("--port", type=int, help="server port (default: any free port)")
    dht.add_argument("--bootstrap", help="host:port[,host:port...]; empty makes a bootstrapper")
    dht.add_argument("--mode", choices=["persistent", "adaptive", "ephemeral"],
                     help="persistent (default): join routing tables once reachable")
    dht.add_argument("--timeout", type=float, help="stop after this many seconds")
    dht.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on /metrics at this port")
    dht.add_argument("--metrics-host", help="the address /metrics binds (default 127.0.0.1)")

    net = sub.add_parser("testnet", help="run a local network of DHT nodes in this process")
    net.add_argument("--size", type=int, help="how many nodes (default 5)")
    net.add_argument("--host", help="IPv4 address to bind (default 127.0.0.1)")
    net.add_argument("--port", type=int, help="the bootstrapper's port (default: any free port)")
    net.add_argument("--timeout", type=float, help="stop after this many seconds")

    peer = sub.add_parser("peer", help="run one swarm peer of a Hugin group")
    peer.add_argument("--bootstrap", help="host:port[,host:port...] (required)")
    peer.add_argument("--group", help="the group seed in hex (filled to 32 bytes as the Hugin apps do)")
    peer.add_argument("--invite", help="instead of --group: a Hugin app invite, taken as text")
    peer.add_argument("--topic", help="topic in hex (default: the group's Hugin topic)")
    peer.add_argument("--seed", help="our DHT key pair's 32-byte seed in hex (default: random)")
    peer.add_argument("--role", choices=["server", "client", "both"], help="default both")
    peer.add_argument("--mode", choices=["echo", "sink", "source", "idle"], help="default echo")
    peer.add_argument("--bytes", type=int,
                      help="source mode: bytes to send each connection; what an echo peer returns is checked")
    peer.add_argument("--host", help="IPv4 address to bind (default 127.0.0.1)")
    peer.add_argument("--port", type=int, help="DHT port (default: any free port)")
    peer.add_argument("--relay-through", help="blind relays' public keys (HEX[,HEX...]): used when our NAT is "
                      "random or punching to a peer failed")
    peer.add_argument("--timeout", type=float, help="stop after this many seconds")
    peer.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on /metrics at this port")
    peer.add_argument("--metrics-host", help="the address /metrics binds (default 127.0.0.1)")

    relay = sub.add_parser("relay", help="a blind relay for anyone (its own DHT node); first line "
                           "{\"event\": \"relay\", \"publicKey\", \"host\", \"port\"}")
    relay.add_argument("--bootstrap", help="host:port[,host:port...] (required)")
    relay.add_argument("--host", help="IPv4 address to bind (default 127.0.0.1)")
    relay.add_argument("--port", type=int, help="DHT port (default: any free port)")
    relay.add_argument("--seed", help="the relay key pair's 32-byte seed in hex (default: random)")
    relay.add_argument("--timeout", type=float, help="stop after this many seconds")

    cluster = sub.add_parser("cluster", help="run the nodes of a cluster file, each in its own process")
    cluster.add_argument("--config", default=argparse.SUPPRESS, help="the cluster file (TOML)")
    cluster.add_argument("--admin-port", type=int, required=True, help="the actor system's admin port")
    cluster.add_argument("--system", default="a", help="this actor system's name (nodes choose one by it)")
    cluster.add_argument("--convention", help="host:port of the convention leader's admin port, to join it")
    cluster.add_argument("--host", help="this system's IPv4 address, which the other hosts reach (several hosts; "
                         "default: 127.0.0.1 only); nodes without a host in the file bind it")
    cluster.add_argument("--timeout", type=float, help="stop after this many seconds")
    cluster.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on /metrics at this port")
    cluster.add_argument("--metrics-host", help="the address /metrics binds (default 127.0.0.1)")

    status = sub.add_parser("status", help="print the state of a running cluster's nodes")
    status.add_argument("--admin-port", type=int, required=True)
    status.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    status.add_argument("--systems", action="store_true", help="the convention's actor systems (JSON array)")
    status.add_argument("--host", help="this host's address, when the cluster spans several hosts")

    demo = sub.add_parser("demo", help="a local testnet and peers that find and greet each other")
    demo.add_argument("--peers", type=int, default=3, help="swarm peers (default 3)")
    return parser


def main(argv: list[str] | None = None, prog: str = "hyperswarm-hugin") -> int:
    """Run one command; the exit status: 0 after a clean stop, 2 on bad arguments, 1 on OS errors."""
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        table = load_toml(args.config).get(args.command, {}) if args.config and args.command != "cluster" else {}
        flags = {k: v for k, v in vars(args).items() if k not in ("config", "log_level", "command", "peers")}
        if args.command == "cluster":
            if args.config is None and args.convention is None:
                raise SettingsError("cluster needs --config FILE (or --convention to lend this system to one)")
            metrics_at = None if args.metrics_port is None else (args.metrics_host or "127.0.0.1", args.metrics_port)
            run_cluster(args.config, args.admin_port, args.system, args.convention, args.timeout, metrics_at,
                        args.host)
        elif args.command == "status":
            if args.systems:
                print_systems(args.admin_port, args.host)
            else:
                print_status(args.admin_port, args.json, args.host)
        elif args.command == "demo":
            if not 2 <= args.peers <= 20:
                raise SettingsError("demo takes --peers from 2 to 20")
            event_loop.run(run_demo(args.peers, timeout=30.0))
        elif args.command == "peer":
            event_loop.run(run_peer(merge(PeerSettings(), table, flags)))
        elif args.command == "relay":
            event_loop.run(run_relay(merge(RelaySettings(), table, flags)))
        elif args.command == "dht":
            if table.get("bootstrap") is None and flags.get("bootstrap") is None:
                raise SettingsError("dht needs --bootstrap (host:port list, or \"\" for a bootstrapper)")
            event_loop.run(run_dht(merge(DHTSettings(), table, flags)))
        else:
            event_loop.run(run_testnet(merge(TestnetSettings(), table, flags)))
    except SettingsError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # ConnectionError too: no cluster on that admin port
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    return 0

