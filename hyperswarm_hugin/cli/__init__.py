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

On the standard event loop the commands load asyncio without ``ssl``, which none of them uses
(:func:`import_asyncio_without_ssl`).
"""


from __future__ import annotations

import argparse
import logging
import sys

from hyperswarm_hugin.config.settings import (
    DHTSettings,
    PeerSettings,
    RelaySettings,
    SettingsError,
    TestnetSettings,
    load_toml,
    merge,
)

__all__ = ["build_parser", "import_asyncio_without_ssl", "main"]


def import_asyncio_without_ssl() -> None:
    """Import asyncio while ``ssl`` cannot be imported, then let ``ssl`` be imported again.

    asyncio imports ``ssl`` (OpenSSL's libssl and ssl's tables: ~1.5 MB of a running peer's RSS,
    docs/performance.md) for TLS transports, which no command uses.  asyncio's modules keep
    ``ssl = None`` and would refuse a TLS connection; a later ``import ssl`` (prometheus_client's,
    with ``--metrics-port``) loads it as usual.  The command line does this before any command's
    module loads, on the standard loop only (uvloop loads ``ssl`` itself), and not where asyncio or
    ``ssl`` is already loaded (main() called from a program); the library never does.
    """
    if "asyncio" in sys.modules or "ssl" in sys.modules:
        return
    sys.modules["ssl"] = None  # type: ignore[assignment]  # `import ssl` raises ImportError
    try:
        import asyncio  # noqa: F401
    finally:
        if sys.modules.get("ssl", False) is None:
            del sys.modules["ssl"]


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
    from hyperswarm_hugin import event_loop

    if event_loop.standard_loop_chosen():
        import_asyncio_without_ssl()
    # Each command's module is imported when that command runs: a peer does not load the others.
    try:
        table = load_toml(args.config).get(args.command, {}) if args.config and args.command != "cluster" else {}
        flags = {k: v for k, v in vars(args).items() if k not in ("config", "log_level", "command", "peers")}
        if args.command == "cluster":
            from hyperswarm_hugin.cli.cluster import run_cluster

            if args.config is None and args.convention is None:
                raise SettingsError("cluster needs --config FILE (or --convention to lend this system to one)")
            metrics_at = None if args.metrics_port is None else (args.metrics_host or "127.0.0.1", args.metrics_port)
            run_cluster(args.config, args.admin_port, args.system, args.convention, args.timeout, metrics_at,
                        args.host)
        elif args.command == "status":
            from hyperswarm_hugin.cli.cluster import print_status, print_systems

            if args.systems:
                print_systems(args.admin_port, args.host)
            else:
                print_status(args.admin_port, args.json, args.host)
        elif args.command == "demo":
            from hyperswarm_hugin.cli.peer import run_demo

            if not 2 <= args.peers <= 20:
                raise SettingsError("demo takes --peers from 2 to 20")
            event_loop.run(run_demo(args.peers, timeout=30.0))
        elif args.command == "peer":
            from hyperswarm_hugin.cli.peer import run_peer

            event_loop.run(run_peer(merge(PeerSettings(), table, flags)))
        elif args.command == "relay":
            from hyperswarm_hugin.cli.nodes import run_relay

            event_loop.run(run_relay(merge(RelaySettings(), table, flags)))
        elif args.command == "dht":
            from hyperswarm_hugin.cli.nodes import run_dht

            if table.get("bootstrap") is None and flags.get("bootstrap") is None:
                raise SettingsError("dht needs --bootstrap (host:port list, or \"\" for a bootstrapper)")
            event_loop.run(run_dht(merge(DHTSettings(), table, flags)))
        else:
            from hyperswarm_hugin.cli.nodes import run_testnet

            event_loop.run(run_testnet(merge(TestnetSettings(), table, flags)))
    except SettingsError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # ConnectionError too: no cluster on that admin port
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    return 0
