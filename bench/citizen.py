#!/usr/bin/env python3
"""A good citizen of a mixed DHT (issue 17): Node hyperdht and Python nodes on loopback, with churn.

Starts ``--node-nodes`` Node hyperdht nodes (tests/interop/node/dht_network.js, the first one the
bootstrapper) and ``--python-nodes`` Python nodes in this process, all persistent.  Each topic is
announced by two nodes of each implementation; one server of each listens.  Then, over
``--minutes``: nodes of both kinds die one after another (never the announcers, servers or the
bootstrapper), two Node nodes sleep (dht-rpc's suspend/resume) and two Python nodes see their
wall clock jump an hour (they keep answering meanwhile), and ``--relay-kills`` relays of each
server die, one at a time, each at a random moment (so one lucky phase of the 3 s ping cycle
does not decide).
At the end it prints, per implementation:

- dead entries left in the routing tables of the nodes still alive;
- eviction pings sent per node once every node is up: every internal PING a node sent (Node:
  dht-rpc's counter; ours: our table checks, the only internal PINGs a node that is no server
  sends), over the nodes that neither serve nor slept, and apart over the sleepers (a wake-up
  re-pings: two sleepers weigh 2/9 of our nodes and 2/39 of Node's; Node's send nothing while
  suspended, ours keep ticking, so that row is not like for like); with what sent them (sweep,
  full row, down hint: a persistent node of either kind pings for a full row only in rows
  created after it became persistent, as dht-rpc 6.27 runs; see docs/architecture.md);
- records found per lookup vs the announced ones (of the announcers still alive: a relay killed
  may be one);
- how long a server took to replace a relay that died (as many relays as before, without it):
  median, min and max over the kills.

    .venv/bin/python bench/citizen.py [--minutes 10] [--node-nodes 40] [--python-nodes 10] [--seed 1]
                                      [--relay-kills 5]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hyperswarm_hugin import DHT  # noqa: E402
from hyperswarm_hugin.peer_connect import Server  # noqa: E402
from hyperswarm_hugin.protocol.encoding import Address  # noqa: E402
from hyperswarm_hugin.protocol.hugin import KeyPair  # noqa: E402
from tests.interop.stdio_node import StdioNode  # noqa: E402

log = logging.getLogger("citizen")

HOST = "127.0.0.1"
TOPICS = 6
LOOKUPS_PER_TOPIC = 3
RECOVERY_LIMIT = 120.0


def _addr(pair: Any) -> Address:
    return (str(pair[0]), int(pair[1]))


class NodeNet:
    """The Node hyperdht network in a child process; calls are serialised and run off the loop."""

    def __init__(self, count: int, timeout: float) -> None:
        self.js = StdioNode("dht_network.js", "--nodes", str(count), "--impl", "hyperdht",
                            "--timeout", str(int(timeout)))
        ready = self.js.read(300.0)
        if ready.get("event") != "ready":
            raise RuntimeError(f"the Node network did not start: {ready}")
        self.bootstrap = [_addr(b.rsplit(":", 1)) for b in ready["bootstrap"]]
        self.addresses = [(n["host"], n["port"]) for n in ready["nodes"]]
        self._lock = asyncio.Lock()

    async def call(self, cmd: str, deadline: float = 60.0, **fields: Any) -> Any:
        async with self._lock:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, lambda: self.js.request(cmd, deadline, **fields))

    def close(self) -> None:
        self.js.close()


@dataclass
class Outcome:
    dead_entries: int = 0
    holders: int = 0
    eviction_pings: int = 0
    pingers: int = 0
    sleeper_pings: int = 0
    sleepers: int = 0
    by_cause: dict[str, int] = field(default_factory=dict)
    """Pings of the non-sleeping pingers by what sent them: sweep, full row, down hint."""
    found: list[float] = field(default_factory=list)
    recoveries: list[float | None] = field(default_factory=list)
    """Per relay killed: seconds until replaced (None: not within RECOVERY_LIMIT)."""


async def _wait_for(check: Callable[[], Awaitable[bool]], limit: float) -> float | None:
    """Seconds until ``check()`` holds (polled every 0.5 s), or None past ``limit``."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while loop.time() - start < limit:
        if await check():
            return loop.time() - start
        await asyncio.sleep(0.5)
    return None


async def run(args: argparse.Namespace) -> dict[str, Outcome]:
    rng = random.Random(args.seed)
    total = float(args.minutes) * 60.0
    loop = asyncio.get_running_loop()
    nodenet = NodeNet(args.node_nodes, total + 600)
    pys: list[DHT] = []
    try:
        for _ in range(args.python_nodes):
            dht = DHT(bootstrap=nodenet.bootstrap, host=HOST, firewalled=False)
            await dht.start()
            pys.append(dht)
        await asyncio.gather(*(d.ready(120) for d in pys))
        # Pings are counted from here: the Node nodes were up first, and longer.
        async def node_pings(i: int) -> dict[str, int]:
            stats = await nodenet.call("stats", node=i)
            checks = stats["checks"]
            return {"all": stats["tx"][0], "sweep": checks["sweep"], "full row": checks["fullRow"],
                    "down hint": checks["downHint"]}

        at_start: dict[tuple[str, int], dict[str, int]] = {}
        for i in range(1, args.node_nodes):
            at_start[("Node", i)] = await node_pings(i)
        for j, dht in enumerate(pys):
            at_start[("Python", j)] = _py_pings((await dht.status()).stats)
        started = loop.time()
        log.info("network up: %d Node, %d Python nodes", args.node_nodes, len(pys))

        # Announcers and servers stay alive; the bootstrapper too.
        node_alive = set(range(1, args.node_nodes))
        py_alive = set(range(len(pys)))
        expected: dict[bytes, set[str]] = {}
        keep_node = set(range(1, 8))  # the Node server, then six announcers
        keep_py = {0, 1, 2, 3}  # the Python server, then three announcers
        announced: dict[tuple[str, int], list[tuple[bytes, str]]] = {}  # who announced what
        for t in range(TOPICS):
            topic = rng.randbytes(32)
            keys = expected.setdefault(topic, set())
            for i in rng.sample(range(2, 8), 2):
                res = await nodenet.call("announce", node=i, topic=topic.hex(), seed=rng.randbytes(32).hex())
                keys.add(res["publicKey"])
                announced.setdefault(("Node", i), []).append((topic, res["publicKey"]))
            for j in rng.sample(range(1, 4), 2):
                kp = KeyPair.random()
                await pys[j].announce(topic, kp)
                keys.add(kp.public_key.hex())
                announced.setdefault(("Python", j), []).append((topic, kp.public_key.hex()))
            log.info("topic %d announced by %d peers", t, len(keys))
        await nodenet.call("listen", node=1, seed=rng.randbytes(32).hex())
        py_server: Server = await pys[0].listen(KeyPair.random())

        dead: set[Address] = set()

        def forget_records(who: tuple[str, int]) -> None:
            # An announcer killed as a relay: its records are no longer expected.
            for topic, key in announced.pop(who, []):
                expected[topic].discard(key)

        async def kill_node(i: int) -> None:
            if i not in node_alive:
                return  # a churn victim that died as a relay
            node_alive.discard(i)
            forget_records(("Node", i))
            dead.add(_addr(nodenet.addresses[i]))
            await nodenet.call("destroy", node=i)

        async def kill_py(j: int) -> None:
            if j not in py_alive:
                return
            py_alive.discard(j)
            forget_records(("Python", j))
            dead.add(pys[j].address)
            await pys[j].close()

        def at(fraction: float) -> float:
            return started + fraction * total

        # Churn over the first 60%: ~20% of each kind die (never the kept ones).
        node_victims = rng.sample(sorted(node_alive - keep_node), max(1, args.node_nodes // 5))
        py_victims = rng.sample(sorted(py_alive - keep_py), max(1, args.python_nodes // 5))
        events: list[tuple[float, str, int]] = []
        for k, i in enumerate(node_victims):
            events.append((at(0.05 + 0.55 * k / len(node_victims)), "kill-node", i))
        for k, j in enumerate(py_victims):
            events.append((at(0.1 + 0.5 * k / len(py_victims)), "kill-py", j))
        sleepers_node = rng.sample(sorted(node_alive - keep_node - set(node_victims)), 2)
        sleepers_py = rng.sample(sorted(py_alive - keep_py - set(py_victims)), 2)
        for i in sleepers_node:
            events.append((at(0.3), "suspend", i))
            events.append((at(0.3) + min(60.0, 0.1 * total), "resume", i))
        for j in sleepers_py:
            events.append((at(0.3) + min(60.0, 0.1 * total), "wake-py", j))
        # Relay kills, alternating between the two servers, each at a random moment of its slot
        # (so of the 3 s ping cycle), between 10% and 60% of the run, with the churn (the tables
        # have the last 35% to forget the dead).  A churn event due meanwhile waits until the
        # relay is replaced.
        slots = 2 * args.relay_kills
        for k in range(slots):
            events.append((at(0.1 + 0.5 * (k + 0.6 * rng.random()) / slots), "relay", k % 2))
        events.sort()
        spare = set(sleepers_node), set(sleepers_py)
        recoveries: dict[str, list[float | None]] = {"Node": [], "Python": []}
        for when, what, who in events:
            await asyncio.sleep(max(0.0, when - loop.time()))
            log.info("%.0fs: %s %d", loop.time() - started, what, who)
            if what == "kill-node":
                await kill_node(who)
            elif what == "kill-py":
                await kill_py(who)
            elif what == "suspend":
                await nodenet.call("suspend", node=who)
            elif what == "resume":
                await nodenet.call("resume", node=who)
            elif what == "wake-py":
                pys[who].runtime.wall_skew += 3600.0
            elif what == "relay":
                impl = ("Node", "Python")[who]
                killed, took = await _relay_death(impl, nodenet, pys, py_server, kill_node, kill_py,
                                                  node_alive - spare[0], py_alive - spare[1], rng)
                if killed:
                    recoveries[impl].append(took)
        await asyncio.sleep(max(0.0, at(0.95) - loop.time()))

        out = {"Python": Outcome(), "Node": Outcome()}
        for impl in out:
            out[impl].recoveries = recoveries[impl]
        for i in sorted(node_alive):
            table = await nodenet.call("table", node=i)
            out["Node"].dead_entries += sum(1 for n in table if (n["host"], n["port"]) in dead)
            out["Node"].holders += 1
            if i != 1:
                _count_pings(out["Node"], await node_pings(i), at_start[("Node", i)], i in sleepers_node)
        for j in sorted(py_alive):
            status = await pys[j].status()
            out["Python"].dead_entries += sum(1 for _, a in status.table if a in dead)
            out["Python"].holders += 1
            if j != 0:
                _count_pings(out["Python"], _py_pings(status.stats), at_start[("Python", j)], j in sleepers_py)
        for topic, keys in expected.items():
            if not keys:
                continue  # every announcer of it died as a relay
            for i in rng.sample(sorted(node_alive), LOOKUPS_PER_TOPIC):
                found = {p["publicKey"] for p in await nodenet.call("lookup", node=i, topic=topic.hex())}
                out["Node"].found.append(len(found & keys) / len(keys))
            for j in rng.sample(sorted(py_alive), min(LOOKUPS_PER_TOPIC, len(py_alive))):
                peers = await pys[j].lookup(topic)
                out["Python"].found.append(len({p.public_key.hex() for p in peers} & keys) / len(keys))
        await py_server.close()
        return out
    finally:
        for dht in pys:
            await dht.close()
        nodenet.close()


def _py_pings(stats: dict[str, int]) -> dict[str, int]:
    return {"all": stats["check_pings"], "sweep": stats["sweep_pings"], "full row": stats["full_row_pings"],
            "down hint": stats["down_hint_pings"]}


def _count_pings(out: Outcome, end: dict[str, int], start: dict[str, int], slept: bool) -> None:
    """Add one node's pings between ``start`` and ``end`` (counters by cause, "all" the total)."""
    sent = {cause: end[cause] - start[cause] for cause in end}
    if slept:
        out.sleeper_pings += sent["all"]
        out.sleepers += 1
        return
    out.eviction_pings += sent["all"]
    out.pingers += 1
    for cause in ("sweep", "full row", "down hint"):
        out.by_cause[cause] = out.by_cause.get(cause, 0) + sent[cause]


async def _relay_death(impl: str, nodenet: NodeNet, pys: list[DHT], py_server: Server,
                       kill_node: Callable[[int], Awaitable[None]], kill_py: Callable[[int], Awaitable[None]],
                       node_alive: set[int], py_alive: set[int], rng: random.Random) -> tuple[bool, float | None]:
    """Kill one relay of ``impl``'s server (not a server or a sleeper; a churn victim dies sooner,
    an announcer's records are no longer expected): whether one was killed, and the seconds until
    the server had as many relays as before, none of them the dead one (None past RECOVERY_LIMIT)."""
    by_address: dict[Address, Callable[[], Awaitable[None]]] = {}
    for i in node_alive - {1}:
        by_address[_addr(nodenet.addresses[i])] = (lambda i=i: kill_node(i))  # type: ignore[misc]
    for j in py_alive - {0}:
        by_address[pys[j].address] = (lambda j=j: kill_py(j))  # type: ignore[misc]

    async def node_relays() -> list[Address]:
        return [_addr(r) for r in await nodenet.call("relays", node=1)]

    async def py_relays() -> list[Address]:
        return [r.relay_address for r in py_server.relays]

    relays = node_relays if impl == "Node" else py_relays
    current = await relays()
    candidates = [a for a in current if a in by_address]
    if not candidates:
        log.warning("%s server: no relay to kill among %s", impl, current)
        return False, None
    victim = rng.choice(candidates)
    await by_address[victim]()

    async def replaced() -> bool:
        # Recovered once the victim is gone and as many relays as before hold the record
        # (ours stops offering a silent relay before its replacement is found).
        now = await relays()
        return victim not in now and len(now) >= len(current)

    took = await _wait_for(replaced, RECOVERY_LIMIT)
    log.info("%s server: relay %s died; relays now %s after %s s", impl, victim, await relays(), took)
    return True, took


def _recovery(o: Outcome) -> str:
    """Median (min-max) of the recoveries, and how many of the kills recovered at all."""
    done = sorted(t for t in o.recoveries if t is not None)
    if not o.recoveries:
        return "-"
    if not done:
        return f"none of {len(o.recoveries)}"
    text = f"{statistics.median(done):.1f} ({done[0]:.1f}-{done[-1]:.1f})"
    return text if len(done) == len(o.recoveries) else f"{text} {len(done)}/{len(o.recoveries)}"


def _table(out: dict[str, Outcome]) -> str:
    def row(name: str, fn: Callable[[Outcome], str]) -> str:
        return f"{name:<50}" + "".join(f"{fn(out[impl]):>18}" for impl in ("Python", "Node"))

    def per(n: int, d: int) -> str:
        return f"{n} ({n / d:.1f}/node)" if d else "-"

    def cause_row(cause: str) -> str:
        return row(f"  of which {cause}", lambda o: per(o.by_cause.get(cause, 0), o.pingers))

    lines = [
        f"{'':<50}{'Python':>18}{'Node':>18}",
        row("dead entries left in tables", lambda o: per(o.dead_entries, o.holders)),
        row("eviction pings sent (nodes that did not sleep)", lambda o: per(o.eviction_pings, o.pingers)),
        *(cause_row(cause) for cause in ("sweep", "full row", "down hint")),
        row("eviction pings sent (sleepers)", lambda o: per(o.sleeper_pings, o.sleepers)),
        row("records found per lookup vs announced", lambda o: f"{sum(o.found) / len(o.found):.0%}"
            if o.found else "-"),
        row("lookups that found every record", lambda o: f"{sum(1 for f in o.found if f == 1)}/{len(o.found)}"),
        row("relays killed (at random moments)", lambda o: str(len(o.recoveries))),
        row("announce recovery, s: median (min-max)", _recovery),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--node-nodes", type=int, default=40)
    parser.add_argument("--python-nodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--relay-kills", type=int, default=5, help="relays killed per server")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s")
    if args.verbose:
        logging.getLogger("hyperswarm_hugin.announcer").setLevel(logging.DEBUG)  # the server's steps
    out = asyncio.run(run(args))
    print(f"{args.node_nodes} Node + {args.python_nodes} Python DHT nodes on loopback, {args.minutes:g} min, "
          f"seed {args.seed}")
    print(_table(out))


if __name__ == "__main__":
    main()
