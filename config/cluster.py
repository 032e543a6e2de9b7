"""A cluster deployment described in TOML: DHT nodes and swarm peers, each run in its own process.

    data_dir = "cluster-data"            # optional: node state (keys, bans, routing snapshot)

    [[dht]]
    name = "boot1"
    port = 49701                         # host: the address of its actor system (--host, 127.0.0.1)
    bootstrap = []                       # empty: a bootstrapper

    [[peer]]
    name = "alice"
    port = 49711
    bootstrap = ["127.0.0.1:49701"]
    group = "<group seed hex>"           # or invite = "..."
    topics = []                          # default: the group's Hugin topic
    role = "both"                        # server | client | both
    system = "b"                         # optional: run on the actor system with this name
    seed = "<32 bytes hex>"              # optional: the DHT key pair; else random, kept in data_dir
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hyperswarm_hugin.config.settings import SettingsError, check_host, check_port, load_toml, parse_address_list

KINDS = ("dht", "peer")


@dataclass(frozen=True)
class NodeSpec:
    """One node of a cluster; ``seed`` is the DHT key pair's seed (hex), fixed for restarts."""

    name: str
    kind: str
    bootstrap: list[tuple[str, int]]
    host: str | None = None  # None: the address of the actor system it runs on (127.0.0.1 on one host)
    port: int = 0
    group: str | None = None
    invite: str | None = None
    topics: list[str] = field(default_factory=list)
    role: str = "both"
    system: str | None = None
    seed: str | None = None
    seed_generated: bool = False  # no seed in the file: a saved one (data_dir) wins over this one

    def to_map(self) -> dict[str, Any]:
        out = asdict(self)
        out["bootstrap"] = [f"{h}:{p}" for h, p in self.bootstrap]
        return out

    @classmethod
    def from_map(cls, data: dict[str, Any]) -> NodeSpec:
        values = dict(data)
        values["bootstrap"] = parse_address_list(values.get("bootstrap") or [])
        return cls(**values)


@dataclass(frozen=True)
class ClusterConfig:
    nodes: list[NodeSpec]
    data_dir: str | None = None


def _node(kind: str, table: dict[str, Any], index: int) -> NodeSpec:
    known = {"name", "host", "port", "bootstrap", "group", "invite", "topics", "role", "system", "seed"}
    if kind == "dht":
        known -= {"group", "invite", "topics", "role"}
    unknown = set(table) - known
    if unknown:
        raise SettingsError(f"[[{kind}]] #{index + 1}: unknown setting(s): {', '.join(sorted(unknown))}")
    name = table.get("name")
    if not isinstance(name, str) or not name or ":" in name:
        raise SettingsError(f"[[{kind}]] #{index + 1}: needs a name (text without ':')")
    try:
        spec = NodeSpec(name=name, kind=kind, bootstrap=parse_address_list(table.get("bootstrap", [])),
                        host=check_host(table["host"]) if "host" in table else None,
                        port=check_port(table.get("port", 0)), group=table.get("group"),
                        invite=table.get("invite"), topics=list(table.get("topics", [])),
                        role=table.get("role", "both"), system=table.get("system"),
                        seed=table.get("seed") or secrets.token_hex(32), seed_generated="seed" not in table)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"node {name}: {exc}") from None
    if kind == "peer":
        if not spec.bootstrap:
            raise SettingsError(f"peer {name}: needs a bootstrap list")
        if (spec.group is None) == (spec.invite is None):
            raise SettingsError(f"peer {name}: needs exactly one of group (hex seed) or invite")
        if spec.role not in ("server", "client", "both"):
            raise SettingsError(f"peer {name}: role must be server, client or both")
        for topic in spec.topics:
            if not isinstance(topic, str) or len(_hex(topic, f"peer {name}: topic")) != 32:
                raise SettingsError(f"peer {name}: a topic is 32 bytes of hex")
        if spec.group is not None and not _hex(spec.group, f"peer {name}: group"):
            raise SettingsError(f"peer {name}: group must not be empty")
        if spec.invite is not None and (not isinstance(spec.invite, str) or not spec.invite):
            raise SettingsError(f"peer {name}: invite must be non-empty text")
    if spec.seed is not None and len(_hex(spec.seed, f"node {name}: seed")) != 32:
        raise SettingsError(f"node {name}: seed is 32 bytes of hex")
    return spec


def _hex(value: str, what: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{what} must be hex") from None


def load_cluster(path: str | Path) -> ClusterConfig:
    """Read and check a cluster file; nodes without a seed get one (kept for their restarts)."""
    table = load_toml(path)
    unknown = set(table) - {"dht", "peer", "data_dir"}
    if unknown:
        raise SettingsError(f"unknown cluster setting(s): {', '.join(sorted(unknown))}")
    nodes = [_node(kind, t, i) for kind in KINDS for i, t in enumerate(table.get(kind, []))]
    if not nodes:
        raise SettingsError("a cluster file lists at least one [[dht]] or [[peer]]")
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        raise SettingsError("node names must be unique")
    data_dir = table.get("data_dir")
    if data_dir is not None and not isinstance(data_dir, str):
        raise SettingsError("data_dir is a path")
    return ClusterConfig(nodes, data_dir)
