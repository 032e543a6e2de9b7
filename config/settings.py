"""Settings for what run_node.py runs: defaults, validation, TOML loading.

A value comes from, in rising priority: the defaults here, a TOML file given
with ``--config`` (a table per command: ``[dht]``, ``[testnet]``), the flags.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

Address = tuple[str, int]

MODES = ("persistent", "adaptive", "ephemeral")


class SettingsError(ValueError):
    """A setting that cannot be used, with what is wrong in the message."""


def parse_address(text: str) -> Address:
    """``"127.0.0.1:49737"`` → ``("127.0.0.1", 49737)``; a clear error otherwise."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not host:
        raise SettingsError(f"expected host:port, got {text!r}")
    check_host(host)
    try:
        port = int(port_text)
    except ValueError:
        raise SettingsError(f"port is not a number in {text!r}") from None
    if not 0 < port < 65536:
        raise SettingsError(f"port out of range in {text!r}")
    return (host, port)


def parse_address_list(value: str | list[str]) -> list[Address]:
    items = value.split(",") if isinstance(value, str) else value
    return [parse_address(item) for item in items if item.strip()]


def check_host(host: str) -> str:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        raise SettingsError(f"not an IPv4 address: {host!r}") from None
    return host


def check_port(port: int, *, allow_zero: bool = True) -> int:
    if not (0 if allow_zero else 1) <= port < 65536:
        raise SettingsError(f"port out of range: {port}")
    return port


@dataclass(frozen=True)
class DHTSettings:
    """One DHT node (``run_node.py dht``)."""

    host: str = "127.0.0.1"
    port: int = 0
    bootstrap: list[Address] = field(default_factory=list)
    mode: str = "persistent"
    firewalled: bool = True
    timeout: float | None = None
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None

    def validated(self) -> DHTSettings:
        check_host(self.host)
        check_port(self.port)
        if self.mode not in MODES:
            raise SettingsError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        _check_metrics(self.metrics_host, self.metrics_port)
        _check_timeout(self.timeout)
        return self


@dataclass(frozen=True)
class TestnetSettings:
    """A local network of DHT nodes in one process (``run_node.py testnet``)."""

    __test__ = False  # not a pytest class

    size: int = 5
    host: str = "127.0.0.1"
    port: int = 0
    timeout: float | None = None

    def validated(self) -> TestnetSettings:
        check_host(self.host)
        check_port(self.port)
        if not 1 <= self.size <= 1000:
            raise SettingsError(f"size must be 1..1000, got {self.size}")
        _check_timeout(self.timeout)
        return self


@dataclass(frozen=True)
class PeerSettings:
    """One swarm peer (``run_node.py peer``)."""

    bootstrap: list[Address] = field(default_factory=list)
    group: str | None = None
    invite: str | None = None
    topic: str | None = None
    seed: str | None = None
    role: str = "both"
    mode: str = "echo"
    bytes: int = 0
    host: str = "127.0.0.1"
    port: int = 0
    relay_through: str | None = None
    timeout: float | None = None
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None

    def validated(self) -> PeerSettings:
        check_host(self.host)
        check_port(self.port)
        if not self.bootstrap:
            raise SettingsError("peer needs --bootstrap host:port[,host:port...]")
        if (self.group is None) == (self.invite is None):
            raise SettingsError("peer needs exactly one of --group HEX (the group seed) or --invite TEXT")
        if self.invite is not None and not self.invite:
            raise SettingsError("--invite must not be empty")
        for name in ("group", "topic", "seed"):
            value = getattr(self, name)
            if value is not None:
                try:
                    raw = bytes.fromhex(value)
                except ValueError:
                    raise SettingsError(f"--{name} must be hex, got {value!r}") from None
                if not raw or (name != "group" and len(raw) != 32):
                    raise SettingsError(f"--{name} must be 32 bytes of hex")
        if self.role not in ("server", "client", "both"):
            raise SettingsError(f"role must be server, client or both, got {self.role!r}")
        if self.mode not in ("echo", "sink", "source", "idle"):
            raise SettingsError(f"mode must be echo, sink, source or idle, got {self.mode!r}")
        if self.bytes < 0:
            raise SettingsError("bytes must not be negative")
        relay_keys(self.relay_through)
        _check_metrics(self.metrics_host, self.metrics_port)
        _check_timeout(self.timeout)
        return self


def relay_keys(text: str | None) -> list[bytes]:
    """``--relay-through HEX[,HEX...]``: blind relays' public keys."""
    if text is None:
        return []
    keys = []
    for part in text.split(","):
        try:
            key = bytes.fromhex(part.strip())
        except ValueError:
            raise SettingsError(f"--relay-through takes hex public keys, got {part!r}") from None
        if len(key) != 32:
            raise SettingsError("--relay-through: a relay's public key is 32 bytes of hex")
        keys.append(key)
    if not keys:
        raise SettingsError("--relay-through needs at least one key")
    return keys


@dataclass(frozen=True)
class RelaySettings:
    """A blind relay on its own DHT node (``run_node.py relay``)."""

    host: str = "127.0.0.1"
    port: int = 0
    bootstrap: list[Address] = field(default_factory=list)
    seed: str | None = None
    timeout: float | None = None

    def validated(self) -> RelaySettings:
        check_host(self.host)
        check_port(self.port)
        if not self.bootstrap:
            raise SettingsError("relay needs --bootstrap host:port[,host:port...]")
        if self.seed is not None:
            try:
                raw = bytes.fromhex(self.seed)
            except ValueError:
                raise SettingsError(f"--seed must be hex, got {self.seed!r}") from None
            if len(raw) != 32:
                raise SettingsError("--seed must be 32 bytes of hex")
        _check_timeout(self.timeout)
        return self


S = TypeVar("S", DHTSettings, TestnetSettings, PeerSettings, RelaySettings)


def _check_metrics(host: str, port: int | None) -> None:
    check_host(host)
    if port is not None:
        check_port(port)


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and timeout <= 0:
        raise SettingsError(f"timeout must be positive, got {timeout}")


def load_toml(path: str | Path) -> dict[str, Any]:
    import tomllib  # only with --config

    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise SettingsError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None


def merge(defaults: S, table: dict[str, Any], flags: dict[str, Any]) -> S:
    """Defaults, overridden by a TOML table, overridden by flags that were given (not None)."""
    known = {f.name for f in fields(defaults)}
    unknown = (set(table) | {k for k, v in flags.items() if v is not None}) - known
    if unknown:
        raise SettingsError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    values: dict[str, Any] = dict(table)
    values.update({k: v for k, v in flags.items() if v is not None})
    if "bootstrap" in values:
        values["bootstrap"] = parse_address_list(values["bootstrap"])
    return replace(defaults, **values).validated()
