"""A NAT lab on one Linux machine (docs: /work/shared/spec/holepunch.md §5).

Network namespaces, all named with a per-run prefix (``hhl<pid>x<n>-``):

    inet  bridge br0 192.88.99.1/24: the public net (not a bogon range), where the DHT runs
    rA    wan0 192.88.99.2 on br0, lan0 10.0.1.1, ip_forward=1, nftables NAT on wan0
    rB    wan0 192.88.99.3 on br0, lan0 10.0.2.1, the same
    hA    eth0 10.0.1.2, default route via rA
    hB    eth0 10.0.2.2, default route via rB
    o1..  eth0 192.88.99.11.. on br0: "open" hosts on the public net, no NAT (``open_hosts=N``)

Each router masquerades what leaves wan0 (``consistent``: plain masquerade, ``random``:
masquerade random, ``fully-random``: masquerade fully-random) and drops new connections arriving
on wan0 (``ct state new drop``: without it the far router maps the TTL-5 probes that reach it and
remaps its own later traffic).  Every process the lab starts runs in one of its namespaces, stops
by itself (the caller passes timeouts) and is killed by pid (its process group) at teardown;
then the namespaces go, taking their links and nftables tables with them.

    with NatLab(nat_a="consistent", nat_b="random", dht="node") as lab:
        server = lab.node("hA", "swarm_peer.js", "--bootstrap", ",".join(lab.bootstrap), ...)
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from tests.lines import JsonLineReader

log = logging.getLogger("natlab")

ROOT = Path(__file__).resolve().parents[2]
NODE_SCRIPTS = ROOT / "tests" / "interop" / "node"
PREFIX = "hhl"
PUBLIC_NET = "192.88.99"
INET_IP = f"{PUBLIC_NET}.1"
ROUTERS = {"rA": (f"{PUBLIC_NET}.2", "10.0.1"), "rB": (f"{PUBLIC_NET}.3", "10.0.2")}
HOSTS = {"hA": ("rA", "10.0.1.2"), "hB": ("rB", "10.0.2.2")}
NAT_TYPES = {
    "consistent": "masquerade",
    "random": "masquerade random",
    "fully-random": "masquerade fully-random",
}
_counter = itertools.count()


class LabError(RuntimeError):
    """The lab cannot be built (not root, a tool missing) or a command in it failed."""


def requirements_problem() -> str | None:
    """Why this machine cannot run the lab, or None when it can."""
    if os.geteuid() != 0:
        return "the NAT lab needs root (network namespaces, nftables): run the natlab tests as root"
    for tool, package in (("ip", "iproute2"), ("nft", "nftables")):
        if shutil.which(tool) is None:
            return f"the NAT lab needs `{tool}` ({package}): .ci/install installs nftables when run as root"
    if shutil.which("node") is None:
        return "the NAT lab needs Node 20 on PATH"
    return None


def run(*argv: str, stdin: str | None = None) -> str:
    """Run a command (ip, nft) to completion; LabError with its stderr when it fails."""
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def list_namespaces() -> list[str]:
    """Every network namespace name on the machine (``ip netns list``)."""
    return [line.split()[0] for line in run("ip", "netns", "list").splitlines() if line.strip()]


def our_namespaces(pid: int | None = None) -> list[str]:
    """Lab namespaces made by process ``pid`` (default: any process)."""
    head = f"{PREFIX}{pid}x" if pid is not None else PREFIX
    return [n for n in list_namespaces() if n.startswith(head) and "-" in n]


def _owner(namespace: str) -> int | None:
    digits = namespace[len(PREFIX):].split("x", 1)[0]
    return int(digits) if digits.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def delete_namespace(name: str) -> None:
    """Kill what still runs inside namespace ``name`` (only lab namespaces: our own processes),
    then delete it."""
    if not name.startswith(PREFIX):
        raise ValueError(f"not a lab namespace: {name}")
    try:
        pids = [int(p) for p in run("ip", "netns", "pids", name).split()]
    except LabError:
        pids = []
    for pid in pids:
        log.warning("natlab: pid %d still ran in %s; killing it", pid, name)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    try:
        run("ip", "netns", "del", name)
    except LabError as exc:
        log.warning("natlab: %s", exc)


def remove_stale_namespaces() -> list[str]:
    """Delete lab namespaces whose creating process is gone (a crashed or killed run)."""
    removed = []
    for name in our_namespaces():
        owner = _owner(name)
        if owner is not None and owner != os.getpid() and not _alive(owner):
            delete_namespace(name)
            removed.append(name)
    return removed


class LabProcess:
    """A process inside a lab namespace: JSON lines from stdout, stderr kept in a file."""

    def __init__(self, namespace: str, label: str, argv: Sequence[str], cwd: Path,
                 stop_signal: int | None = None, env: dict[str, str] | None = None) -> None:
        self.label = label
        self.stop_signal = stop_signal
        self.namespace = namespace
        self.argv = list(argv)
        self._stderr: IO[str] = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", namespace, *argv], cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._stderr, start_new_session=True, env=env,
        )
        assert self.proc.stdout is not None
        self._lines = JsonLineReader(self.proc.stdout)
        self.started = time.monotonic()
        self.lines: list[dict[str, Any]] = []

    @property
    def pid(self) -> int:
        return self.proc.pid

    def read(self, deadline: float) -> dict[str, Any] | None:
        """The next JSON line (also kept in ``lines``), or None at EOF or after ``deadline`` s."""
        try:
            found = self._lines.read(max(0.0, deadline))
        except ValueError:  # a non-JSON line: a crash message on stdout
            return None
        if found is not None:
            found.setdefault("event", None)
            found["_t"] = time.monotonic() - self.started
            found["_wall"] = time.time()
            self.lines.append(found)
        return found

    @property
    def eof(self) -> bool:
        return self._lines.eof

    def wait_for(self, event: str, deadline: float, fail_on: Sequence[str] = ("error",)) -> dict[str, Any]:
        """The next line with ``event``; AssertionError (with stderr) on a ``fail_on`` line, EOF or
        when the deadline passes."""
        end = time.monotonic() + deadline
        while True:
            found = self.read(end - time.monotonic())
            if found is None:
                raise AssertionError(f"{self.label}: no {event!r} line within {deadline} s; {self.describe()}")
            if found["event"] == event:
                return found
            if found["event"] in fail_on:
                raise AssertionError(f"{self.label}: {found} while waiting for {event!r}; {self.describe()}")

    def stderr_tail(self, size: int = 3000) -> str:
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read()[-size:]

    def describe(self) -> str:
        state = "running" if self.proc.poll() is None else f"exited {self.proc.returncode}"
        return f"{state}; lines {self.lines[-5:]}; stderr: {self.stderr_tail()}"

    def close_stdin(self) -> None:
        """Close its stdin (the lab's Node scripts exit when it closes) and send ``stop_signal``."""
        if self.stop_signal is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, self.stop_signal)
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()

    def stop(self, grace: float = 3.0) -> None:
        """Close stdin (and send ``stop_signal``, e.g. SIGTERM for run_node.py), wait up to ``grace``
        s for it to exit, then kill its process group (the group too when it exited: anything it
        left behind)."""
        self.close_stdin()
        if self.proc.poll() is None and grace > 0:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._lines.close()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()


class NatLab:
    """The lab as a context manager.  ``nat_a``/``nat_b``: the NAT of rA/rB (see NAT_TYPES);
    ``dht``: "node" (dht_network.js), "python" (run_node.py testnet) or None; ``dht_size`` nodes
    on 192.88.99.1; ``open_hosts``: public hosts o1.. at 192.88.99.11..; ``timeout``: how long
    every long-lived lab process (the DHT) lives at most."""

    def __init__(self, nat_a: str = "consistent", nat_b: str = "consistent", *, dht: str | None = "node",
                 dht_size: int = 10, open_hosts: int = 0, timeout: float = 300.0) -> None:
        for nat in (nat_a, nat_b):
            if nat not in NAT_TYPES:
                raise ValueError(f"unknown NAT type {nat!r}; one of {sorted(NAT_TYPES)}")
        if dht not in ("node", "python", None):
            raise ValueError(f"unknown DHT variant {dht!r}")
        self.prefix = f"{PREFIX}{os.getpid()}x{next(_counter)}-"
        self.nat = {"rA": nat_a, "rB": nat_b}
        self.dht_variant = dht
        self.dht_size = dht_size
        self.timeout = timeout
        self.open_hosts = [f"o{i + 1}" for i in range(open_hosts)]
        self.ip = {"inet": INET_IP, **{h: ip for h, (_, ip) in HOSTS.items()},
                   **{r: wan for r, (wan, _) in ROUTERS.items()},
                   **{o: f"{PUBLIC_NET}.{11 + i}" for i, o in enumerate(self.open_hosts)}}
        self.processes: list[LabProcess] = []
        self._pycache: str | None = None
        self.bootstrap: list[str] = []
        self.dht_nodes: list[dict[str, Any]] = []
        self.dht_process: LabProcess | None = None
        self._made: list[str] = []

    # -- namespaces --------------------------------------------------------------------------
    def ns(self, name: str) -> str:
        """The real namespace name of lab host ``name`` (inet, rA, rB, hA, hB, o1..)."""
        return self.prefix + name

    @property
    def namespaces(self) -> list[str]:
        return list(self._made)

    def _ip(self, name: str, *args: str) -> None:
        run("ip", "-n", self.ns(name), *args)

    def _add_ns(self, name: str) -> None:
        run("ip", "netns", "add", self.ns(name))
        self._made.append(self.ns(name))
        self._ip(name, "link", "set", "lo", "up")

    def _build(self) -> None:
        for name in ("inet", *ROUTERS, *HOSTS, *self.open_hosts):
            self._add_ns(name)
        self._ip("inet", "link", "add", "br0", "type", "bridge")
        self._ip("inet", "addr", "add", f"{INET_IP}/24", "dev", "br0")
        self._ip("inet", "link", "set", "br0", "up")
        for router, (wan, lan) in ROUTERS.items():
            self._plug(router, "wan0", f"w{router}", wan)
            self._ip(router, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0",
                     "netns", self.ns(f"h{router[1]}"))
            self._ip(router, "addr", "add", f"{lan}.1/24", "dev", "lan0")
            self._ip(router, "link", "set", "lan0", "up")
            run("ip", "netns", "exec", self.ns(router), "sysctl", "-qw", "net.ipv4.ip_forward=1")
            self.set_nat(router, self.nat[router])
        for host, (router, addr) in HOSTS.items():
            self._ip(host, "addr", "add", f"{addr}/24", "dev", "eth0")
            self._ip(host, "link", "set", "eth0", "up")
            self._ip(host, "route", "add", "default", "via", f"{ROUTERS[router][1]}.1")
        for host in self.open_hosts:
            self._plug(host, "eth0", f"w{host}", self.ip[host])

    def _plug(self, name: str, ifname: str, bridge_port: str, addr: str) -> None:
        """A veth from namespace ``name`` (``ifname``, ``addr``/24) to a port of inet's br0."""
        self._ip(name, "link", "add", ifname, "type", "veth", "peer", "name", bridge_port, "netns", self.ns("inet"))
        self._ip("inet", "link", "set", bridge_port, "master", "br0")
        self._ip("inet", "link", "set", bridge_port, "up")
        self._ip(name, "addr", "add", f"{addr}/24", "dev", ifname)
        self._ip(name, "link", "set", ifname, "up")

    def set_udp_timeouts(self, router: str, unreplied: int, replied: int) -> None:
        """How long router ``router``'s conntrack keeps a UDP mapping without traffic: ``unreplied``
        seconds before a reply was seen, ``replied`` after (Linux: 30 and 120; home routers often
        forget sooner).  A peer behind it stays reachable only if it keeps its mappings warm."""
        for key, value in (("nf_conntrack_udp_timeout", unreplied), ("nf_conntrack_udp_timeout_stream", replied)):
            run("ip", "netns", "exec", self.ns(router), "sysctl", "-q", "-w", f"net.netfilter.{key}={value}")

    def set_nat(self, router: str, nat: str) -> None:
        """Replace router ``router``'s nftables ruleset (one transaction): NAT type ``nat`` on wan0
        plus the ``ct state new drop`` input/forward rules.  Existing conntrack mappings stay."""
        if nat not in NAT_TYPES:
            raise ValueError(f"unknown NAT type {nat!r}; one of {sorted(NAT_TYPES)}")
        ruleset = f"""flush ruleset
table ip nat {{
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan0" {NAT_TYPES[nat]}
  }}
}}
table inet filter {{
  chain input {{
    type filter hook input priority filter; policy accept;
    iifname "wan0" ct state new drop
  }}
  chain forward {{
    type filter hook forward priority filter; policy accept;
    iifname "wan0" ct state new drop
  }}
}}
"""
        run("ip", "netns", "exec", self.ns(router), "nft", "-f", "-", stdin=ruleset)
        self.nat[router] = nat

    def hold_probes(self, router: str, towards: str) -> None:
        """Drop the holepunch probes (UDP with 0-1 byte of payload) that hosts behind ``router``
        send to ``towards`` (another router's public address), as a NAT that has not opened yet:
        that side's probes then find no mapping either, so no punch between the two can succeed
        until :meth:`release_probes`.  DHT and relay traffic pass, and so do punches to anyone
        else (a relay's node may need one).  (A table of its own: ``set_nat`` flushes the whole
        ruleset.)"""
        ruleset = f"""table inet probegate {{
  chain forward {{
    type filter hook forward priority filter - 1; policy accept;
    iifname "lan0" ip daddr {self.ip[towards]} udp length < 10 counter drop
  }}
}}
"""
        run("ip", "netns", "exec", self.ns(router), "nft", "-f", "-", stdin=ruleset)

    def release_probes(self, router: str) -> int:
        """Let the probes pass again; returns how many the gate dropped."""
        listing = run("ip", "netns", "exec", self.ns(router), "nft", "list", "table", "inet", "probegate")
        words = listing.split()
        dropped = int(words[words.index("packets") + 1]) if "packets" in words else 0
        run("ip", "netns", "exec", self.ns(router), "nft", "delete", "table", "inet", "probegate")
        return dropped

    def ruleset(self, router: str) -> str:
        """The router's nftables ruleset as nft lists it."""
        return run("ip", "netns", "exec", self.ns(router), "nft", "list", "ruleset")

    # -- processes ---------------------------------------------------------------------------
    def spawn(self, name: str, argv: Sequence[str], *, label: str | None = None, cwd: Path = ROOT,
              stop_signal: int | None = None) -> LabProcess:
        """Start ``argv`` inside lab host ``name``; the lab ends it at teardown (stdin closed,
        ``stop_signal`` if given, then SIGKILL).  The command must stop by itself (pass it a
        timeout)."""
        if self.ns(name) not in self._made:
            raise ValueError(f"no lab host {name!r}")
        process = LabProcess(self.ns(name), label or f"{name}:{Path(argv[0]).name}", argv, cwd, stop_signal,
                             env=self._env())
        self.processes.append(process)
        log.debug("natlab: started pid %d in %s: %s", process.pid, name, " ".join(argv))
        return process

    def node(self, name: str, script: str, *args: str, label: str | None = None) -> LabProcess:
        """A Node script of tests/interop/node inside lab host ``name``."""
        node = shutil.which("node")
        if node is None:
            raise LabError("the NAT lab needs Node 20 on PATH")
        return self.spawn(name, [node, str(NODE_SCRIPTS / script), *args], label=label or f"{name}:{script}",
                          cwd=NODE_SCRIPTS.parent)

    def python(self, name: str, *args: str, label: str | None = None) -> LabProcess:
        """``run_node.py ARGS`` (this checkout's, this interpreter) inside lab host ``name``."""
        return self.spawn(name, [sys.executable, str(ROOT / "run_node.py"), *args],
                          label=label or f"{name}:run_node.py {args[0] if args else ''}", stop_signal=signal.SIGTERM)

    def _start_dht(self) -> None:
        if self.dht_variant == "node":
            dht = self.node("inet", "dht_network.js", "--nodes", str(self.dht_size), "--host", INET_IP,
                            "--timeout", str(int(self.timeout)), label="inet:dht_network.js")
            ready = dht.wait_for("ready", 60)
            self.bootstrap = list(ready["bootstrap"])
            self.dht_nodes = list(ready["nodes"])
        elif self.dht_variant == "python":
            dht = self.python("inet", "testnet", "--size", str(self.dht_size), "--host", INET_IP,
                              "--timeout", str(self.timeout), label="inet:run_node.py testnet")
            ready = dht.wait_for("testnet", 60)
            self.bootstrap = list(ready["bootstrap"])
            self.dht_nodes = list(ready["nodes"])
        else:
            return
        self.dht_process = dht
        log.info("natlab: %s DHT of %d nodes, bootstrap %s", self.dht_variant, len(self.dht_nodes), self.bootstrap)

    def _env(self) -> dict[str, str]:
        """The lab's processes' environment: Python keeps its bytecode cache (in a directory of
        this lab's), as an installed package has one, even where the caller's environment says
        PYTHONDONTWRITEBYTECODE: without it every Python peer compiles its ~90 modules at start
        (0.1-0.2 s more than Node's start, in every time-to-connect figure)."""
        env = dict(os.environ)
        if self._pycache is not None:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = self._pycache
        return env

    def _warm_pycache(self) -> None:
        """Compile the project's modules into the lab's bytecode cache once, outside the
        namespaces (no network), so that no peer pays for it."""
        self._pycache = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-pycache-")
        subprocess.run([sys.executable, "-c", "import hyperswarm_hugin.cli.peer"], cwd=ROOT, env=self._env(),
                       capture_output=True, timeout=120, check=True)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> NatLab:
        problem = requirements_problem()
        if problem:
            raise LabError(problem)
        try:
            self._warm_pycache()
            self._build()
            self._start_dht()
        except BaseException:
            self.close()
            raise
        return self

    def stop_processes(self, grace: float = 3.0) -> None:
        """End every process the lab started: stdin closed for all, ``grace`` s shared to exit,
        then SIGKILL to each one's process group."""
        processes, self.processes = self.processes, []
        for process in processes:
            process.close_stdin()
        end = time.monotonic() + grace
        for process in reversed(processes):
            try:
                process.stop(max(0.0, end - time.monotonic()))
            except Exception:
                log.exception("natlab: stopping %s (pid %d)", process.label, process.pid)

    def stop_process(self, process: LabProcess, grace: float = 3.0) -> None:
        """End one process the lab started (as at teardown)."""
        if process in self.processes:
            self.processes.remove(process)
        process.stop(grace)

    def close(self) -> None:
        """Stop the processes, then delete the namespaces (links and nftables tables go with them)."""
        try:
            self.stop_processes()
        finally:
            while self._made:
                delete_namespace(self._made.pop())
            if self._pycache is not None:
                shutil.rmtree(self._pycache, ignore_errors=True)
                self._pycache = None

    def __enter__(self) -> NatLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
