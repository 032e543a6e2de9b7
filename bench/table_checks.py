#!/usr/bin/env python3
"""Full-row check pings, both ways, on the fake clock (issue 17: what they cost, what they buy).

dht-rpc 6.27 pings a full row's oldest node when a newcomer arrives, but a node that becomes
persistent copies its table into a new one before it listens for new rows, so the rows it had
then never do (``RoutingTable.unchecked_rows``).  This runs networks of forced-persistent
sans-IO nodes (tests/simnet.py) both ways: as dht-rpc runs ("as Node", our default) and with
the rule in every row ("every row"), and prints per scenario the check pings per node and the
table entries still pointing at dead nodes (per alive node):

- quiet: nothing dies for 20 minutes after a warm-up;
- churn: every 30 s one node dies and a new one joins, for 20 minutes (mean over the samples);
- die-off: a sixth of the nodes die at once (entries left after 1, 2, 3, 4 and 6 minutes).

    .venv/bin/python bench/table_checks.py [--nodes 120] [--warm 40] [--seed 3]
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hyperswarm_hugin.protocol.dht.node import DHTNode, NodeOptions  # noqa: E402
from tests.simnet import SimNet, sim_testnet  # noqa: E402
from tests.unit.test_dht_citizen import entries_for, kill  # noqa: E402

MODES = ("as Node", "every row")


def _network(args: argparse.Namespace, mode: str) -> SimNet:
    net = sim_testnet(args.nodes, seed=args.seed)
    _apply(net, mode)
    net.advance(args.warm * 60.0)
    return net


def _apply(net: SimNet, mode: str) -> None:
    if mode == "every row":
        for node in net.nodes:
            node.table.unchecked_rows = frozenset()


def _bootstrapped(node: DHTNode) -> bool:
    return node.bootstrapped


def _pings(net: SimNet, before: dict[int, int]) -> float:
    survivors = [n for n in net.nodes if id(n) in before]
    return sum(n.stats.check_pings - before[id(n)] for n in survivors) / len(survivors)


def _churn(args: argparse.Namespace, mode: str, churn: bool) -> str:
    net = _network(args, mode)
    boot = [net.address(net.nodes[0])]
    before = {id(n): n.stats.check_pings for n in net.nodes}
    dead: list[DHTNode] = []
    samples = []
    for _ in range(40):
        if churn:
            victim = net.nodes[1 + net.rng.randrange(len(net.nodes) - 1)]
            kill(net, victim)
            dead.append(victim)
            node = net.add_node(NodeOptions(bootstrap=list(boot), ephemeral=False))
            net.run_until(functools.partial(_bootstrapped, node))
            _apply(net, mode)
        net.advance(30.0)
        samples.append(entries_for(net, dead) / len(net.nodes))
    return f"{_pings(net, before):7.1f} pings/node, dead entries/node {sum(samples) / len(samples):.2f}"


def _die_off(args: argparse.Namespace, mode: str) -> str:
    net = _network(args, mode)
    before = {id(n): n.stats.check_pings for n in net.nodes}
    dead = net.nodes[1:1 + args.nodes // 6]
    for node in dead:
        kill(net, node)
    left = []
    elapsed = 0
    for minute in (1, 2, 3, 4, 6):
        net.advance((minute - elapsed) * 60.0)
        elapsed = minute
        left.append(f"{minute}m {entries_for(net, dead) / len(net.nodes):.2f}")
    return f"{_pings(net, before):7.1f} pings/node, dead entries/node {', '.join(left)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=120)
    parser.add_argument("--warm", type=float, default=40.0, help="minutes before the scenario")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.nodes} persistent nodes on the fake clock, {args.warm:g} min warm-up, seed {args.seed}")
    for mode in MODES:
        print(f"{mode:<10} quiet 20 min:  {_churn(args, mode, churn=False)}")
        print(f"{mode:<10} churn 20 min:  {_churn(args, mode, churn=True)}")
        print(f"{mode:<10} die-off, 6 min: {_die_off(args, mode)}")


if __name__ == "__main__":
    main()
