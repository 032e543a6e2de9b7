"""One cell of the NAT matrix: a server peer in hA (behind rA) and a client peer in hB (behind rB),
same Hugin group and topic, through the lab's public DHT.

Implementations (``impl``):
    "node"           tests/interop/node/swarm_peer.js --impl hugin (hyperswarm-hugin)
    "node-upstream"  swarm_peer.js --impl upstream (hyperswarm + hyperdht, no group barrier)
    "python"         run_node.py peer (this project)

Bytes go both ways: the client writes (source mode), the server echoes, and the client checks
the sha256 of what came back (swarm_peer.js and run_node.py peer both print ``echoed``).

    result = run_cell(lab, "node", "python", "consistent", "random")
    assert result.connected and result.sha_ok
"""

from __future__ import annotations

import os
import selectors
import time
from dataclasses import dataclass, field
from typing import Any

from hyperswarm_hugin import GroupKey
from tests.natlab.lab import LabProcess, NatLab

IMPLS = ("node", "node-upstream", "python")
SERVER_HOST = "hA"
CLIENT_HOST = "hB"
HOLEPUNCH_FAILURES = ("HOLEPUNCH_ABORTED", "HOLEPUNCH_DOUBLE_RANDOMIZED_NATS")


@dataclass
class CellResult:
    """What one run of a cell saw.  ``seconds``: from the client process's start to its
    connection line (comparable across implementations); ``connect_seconds``: a Node client's own
    dht.connect-to-open time; ``error_code``: the first connect error a Node client reported;
    ``errors``: all of them; ``sha_ok``: the echoed bytes' sha256 matched (None: not checked)."""

    server_impl: str
    client_impl: str
    server_nat: str
    client_nat: str
    connected: bool = False
    seconds: float | None = None
    connect_seconds: float | None = None
    error_code: str | None = None
    errors: list[str] = field(default_factory=list)
    sha_ok: bool | None = None
    server_connected: bool = False
    server_lines: list[dict[str, Any]] = field(default_factory=list)
    client_lines: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""

    @property
    def cell(self) -> str:
        return f"{self.server_nat}/{self.client_nat}"

    @property
    def pair(self) -> str:
        return f"{self.server_impl}<-{self.client_impl}"

    def describe(self) -> str:
        """Everything, for an assertion message."""
        return (f"cell {self.cell} {self.pair}: connected={self.connected} seconds={self.seconds} "
                f"sha_ok={self.sha_ok} errors={self.errors} note={self.note!r}\n"
                f"  server lines: {self.server_lines[-8:]}\n  client lines: {self.client_lines[-8:]}")


def start_peer(lab: NatLab, host: str, impl: str, *, role: str, mode: str, nbytes: int, group_seed: bytes,
               topic: bytes, timeout: float, trace: bool = False, relay_through: str | None = None) -> LabProcess:
    """A swarm peer of implementation ``impl`` inside lab host ``host``, bound to 0.0.0.0
    (``trace``: a Node peer also reports its handshake/holepunch round trips; ``relay_through``:
    a blind relay's key in hex, to fall back on)."""
    bootstrap = ",".join(lab.bootstrap)
    label = f"{host}:{impl}-{role}"
    relay = ["--relay-through", relay_through] if relay_through else []
    if impl in ("node", "node-upstream"):
        return lab.node(host, "swarm_peer.js", "--bootstrap", bootstrap, "--seed", os.urandom(32).hex(),
                        "--group", group_seed.hex(), "--topic", topic.hex(),
                        "--impl", "hugin" if impl == "node" else "upstream", "--role", role, "--mode", mode,
                        "--bytes", str(nbytes), "--host", "0.0.0.0", "--timeout", str(int(timeout)),
                        "--trace", "1" if trace else "0", *relay, label=label)
    if impl == "python":
        return lab.python(host, "peer", "--host", "0.0.0.0", "--bootstrap", bootstrap, "--group", group_seed.hex(),
                          "--topic", topic.hex(), "--role", role, "--mode", mode, "--bytes", str(nbytes),
                          "--timeout", str(timeout), *relay, label=label)
    raise ValueError(f"unknown implementation {impl!r}; one of {IMPLS}")


def _next_lines(processes: list[LabProcess], deadline: float) -> list[tuple[LabProcess, dict[str, Any]]]:
    """The lines that are ready on any of ``processes``, waiting up to ``deadline`` s for one."""
    found = [(p, line) for p in processes if (line := p.read(0.001)) is not None]
    if found or deadline <= 0:
        return found
    with selectors.DefaultSelector() as sel:
        for p in processes:
            if not p.eof and p.proc.stdout is not None:
                sel.register(p.proc.stdout, selectors.EVENT_READ, p)
        if not sel.get_map():
            return []
        for key, _ in sel.select(deadline):
            line = key.data.read(0.01)
            if line is not None:
                found.append((key.data, line))
    return found


def run_cell(lab: NatLab, server_impl: str, client_impl: str, server_nat: str, client_nat: str, *,
             nbytes: int = 256 * 1024, deadline: float = 30.0, give_up_after_errors: int | None = None,
             ready_deadline: float = 30.0, trace: bool = False, server_host: str = SERVER_HOST,
             client_host: str = CLIENT_HOST, relay_through: str | None = None,
             client_delay: float = 0.0) -> CellResult:
    """Set rA to ``server_nat`` and rB to ``client_nat``, start the server peer in hA, wait for
    its ``ready`` (announced), start the client peer in hB and follow both until the client is
    connected and the bytes came back, or ``deadline`` s after the client started, or (when
    ``give_up_after_errors``) once a Node client reported that many failed connects without a
    connection.  ``trace``: Node peers report their DHT round trips (``trace`` lines in
    ``client_lines``/``server_lines``).  ``server_host``/``client_host``: other lab hosts, e.g. an
    open host "o1" on the public net (its NAT argument is then only a label's part; set it to
    "consistent").  Both peers are stopped before it returns."""
    lab.set_nat("rA", server_nat)
    lab.set_nat("rB", client_nat)
    result = CellResult(server_impl, client_impl, server_nat, client_nat)
    group_seed = os.urandom(32)
    topic = GroupKey.from_seed(group_seed).topic
    client_mode, server_mode = "source", "echo"  # every implementation checks what it gets back

    life = ready_deadline + deadline + 15
    server = start_peer(lab, server_host, server_impl, role="server", mode=server_mode, nbytes=nbytes,
                        group_seed=group_seed, topic=topic, timeout=life, trace=trace, relay_through=relay_through)
    client: LabProcess | None = None
    try:
        server.wait_for("ready", ready_deadline)
        if client_delay:
            time.sleep(client_delay)  # the scenario: the server sits idle this long (NAT mappings age)
        client = start_peer(lab, client_host, client_impl, role="client", mode=client_mode, nbytes=nbytes,
                            group_seed=group_seed, topic=topic, timeout=deadline + 15, trace=trace,
                            relay_through=relay_through)
        end = client.started + deadline
        while (left := end - time.monotonic()) > 0:
            for process, line in _next_lines([server, client], left):
                _take(result, process is client, line, time.monotonic() - client.started)
            if result.connected and result.sha_ok is not None:
                break
            if result.sha_ok is False:
                break
            if give_up_after_errors and not result.connected and len(result.errors) >= give_up_after_errors:
                result.note = f"gave up after {len(result.errors)} failed connects"
                break
            if server.eof or client.eof:
                result.note = f"a peer exited: server eof={server.eof} client eof={client.eof}"
                break
        else:
            result.note = result.note or f"deadline {deadline} s passed"
    finally:
        result.server_lines = list(server.lines)
        lab.stop_process(server, grace=2)
        if client is not None:
            result.client_lines = list(client.lines)
            lab.stop_process(client, grace=2)
    return result


def _take(result: CellResult, from_client: bool, line: dict[str, Any], elapsed: float) -> None:
    event = line.get("event")
    if event == "connection":
        if from_client:
            if not result.connected:
                result.connected = True
                result.seconds = elapsed
                ms = line.get("connectMs")
                result.connect_seconds = ms / 1000 if isinstance(ms, int | float) else None
        else:
            result.server_connected = True
    elif event == "echoed":
        result.sha_ok = bool(line.get("ok"))
    elif event == "connect-error" and from_client:
        code = str(line.get("code"))
        result.errors.append(code)
        result.error_code = result.error_code or code
    elif event == "error":
        result.errors.append(f"{'client' if from_client else 'server'} error: {line}")


@dataclass
class UpgradeResult:
    """A cell where the relay carries the connection first and a punch moves it later (hyperdht
    6.34): what each peer printed, and when (seconds from the client's start).  ``relayed``:
    both peers' first connection lines name the relay; ``direct``: both printed ``direct``
    towards a router's public address; ``dropped``: probes the gate held back."""

    server_impl: str
    client_impl: str
    relayed: bool = False
    direct: bool = False
    sha_ok: bool | None = None
    relayed_at: float | None = None
    released_at: float | None = None
    direct_at: float | None = None
    echoed_at: float | None = None
    dropped: int = 0
    errors: list[str] = field(default_factory=list)
    server_lines: list[dict[str, Any]] = field(default_factory=list)
    client_lines: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""

    @property
    def pair(self) -> str:
        return f"{self.server_impl}<-{self.client_impl}"

    def describe(self) -> str:
        return (f"relay-then-direct {self.pair}: relayed={self.relayed} (at {self.relayed_at}) released at "
                f"{self.released_at} direct={self.direct} (at {self.direct_at}) sha_ok={self.sha_ok} (at "
                f"{self.echoed_at}) dropped={self.dropped} errors={self.errors} note={self.note!r}\n"
                f"  server lines: {self.server_lines[-10:]}\n  client lines: {self.client_lines[-10:]}")


def _relayed(line: dict[str, Any], relay_host: str) -> bool:
    """A connection line through the relay: ours says so, a Node peer names the relay's address."""
    if "relayed" in line:
        return bool(line["relayed"])
    return str(line.get("remoteAddress") or "").split(":")[0] == relay_host


def run_upgrade_cell(lab: NatLab, server_impl: str, client_impl: str, relay_key: str, relay_host: str, *,
                     nbytes: int = 128 * 1024 * 1024, deadline: float = 60.0,
                     ready_deadline: float = 30.0) -> UpgradeResult:
    """consistent/consistent, both peers given the relay, and rA holding back the server's
    holepunch probes (:meth:`NatLab.hold_probes`): the client's first punch fails
    (HOLEPUNCH_ABORTED), so hyperswarm's retry forces the relay, which pairs while that attempt's
    punch is still probing.  Once both peers printed a relayed connection the gate opens; the
    punch then gets through and the stream moves to it.  The client writes ``nbytes`` and
    checks the echo's sha256.  Follows both peers until both printed ``direct`` and the echo is
    checked, or ``deadline`` s after the client started; both are stopped before it returns."""
    lab.set_nat("rA", "consistent")
    lab.set_nat("rB", "consistent")
    lab.hold_probes("rA", towards="rB")
    result = UpgradeResult(server_impl, client_impl)
    group_seed = os.urandom(32)
    topic = GroupKey.from_seed(group_seed).topic
    life = ready_deadline + deadline + 15
    held = True
    server = start_peer(lab, SERVER_HOST, server_impl, role="server", mode="echo", nbytes=nbytes,
                        group_seed=group_seed, topic=topic, timeout=life, relay_through=relay_key)
    client: LabProcess | None = None
    first: dict[bool, dict[str, Any]] = {}  # from_client -> first connection line
    direct: dict[bool, dict[str, Any]] = {}
    try:
        server.wait_for("ready", ready_deadline)
        client = start_peer(lab, CLIENT_HOST, client_impl, role="client", mode="source", nbytes=nbytes,
                            group_seed=group_seed, topic=topic, timeout=deadline + 15, relay_through=relay_key)
        end = client.started + deadline
        while (left := end - time.monotonic()) > 0:
            for process, line in _next_lines([server, client], left):
                from_client, now = process is client, time.monotonic() - client.started
                event = line.get("event")
                if event == "connection" and from_client not in first:
                    first[from_client] = line
                elif event == "direct" and from_client not in direct:
                    direct[from_client] = line
                    result.direct_at = now
                elif event == "echoed" and from_client:
                    result.sha_ok, result.echoed_at = bool(line.get("ok")), now
                elif event in ("connect-error", "error"):
                    result.errors.append(f"{'client' if from_client else 'server'}: {line.get('code', line)}")
            if held and len(first) == 2:
                result.relayed = all(_relayed(line, relay_host) for line in first.values())
                result.relayed_at = time.monotonic() - client.started
                result.dropped = lab.release_probes("rA")
                result.released_at = time.monotonic() - client.started
                held = False
                if not result.relayed:
                    result.note = "the first connection was not relayed"
                    break
            if len(direct) == 2 and result.sha_ok is not None:
                break
            if server.eof or client.eof:
                result.note = f"a peer exited: server eof={server.eof} client eof={client.eof}"
                break
        else:
            result.note = f"deadline {deadline} s passed"
        routers = {lab.ip["rA"], lab.ip["rB"]}
        result.direct = len(direct) == 2 and all(
            str(line.get("remoteAddress") or "").split(":")[0] in routers for line in direct.values())
    finally:
        if held:
            result.dropped = lab.release_probes("rA")
        result.server_lines = list(server.lines)
        lab.stop_process(server, grace=2)
        if client is not None:
            result.client_lines = list(client.lines)
            lab.stop_process(client, grace=2)
    return result
