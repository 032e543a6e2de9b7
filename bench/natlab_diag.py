#!/usr/bin/env python3
"""Why a NAT-lab cell took long or failed: runs chosen cells and pairs like bench/natlab.py, with
Node peers tracing their holepunch rounds and Python peers logging their punches
(hyperswarm_hugin.holepuncher / .holepunch at DEBUG), and the probes each router forwarded
(nft counters of 1-byte UDP datagrams out of and into wan0).  Prints one block per run.

    .venv/bin/python bench/natlab_diag.py --runs 2 --cells consistent/random --pairs python:node
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tests.natlab.cells as cells  # noqa: E402
from tests.natlab.lab import LabProcess, NatLab, run  # noqa: E402

PYTHON_LOGGING = ("import logging, runpy, sys; logging.basicConfig(level=logging.WARNING, "
                  "format='%(relativeCreated)d %(name)s %(message)s'); "
                  "[logging.getLogger(n).setLevel(logging.DEBUG) for n in "
                  "('hyperswarm_hugin.holepuncher', 'hyperswarm_hugin.holepunch', 'hyperswarm_hugin.peer_connect')]; "
                  "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")

COUNTERS = """table inet hhdiag {
  counter probes_out { }
  counter probes_in { }
  chain probecount { type filter hook forward priority -10; policy accept;
    oifname "wan0" udp length 9 counter name probes_out
    iifname "wan0" udp length 9 counter name probes_in
  }
}"""


StartPeer = Callable[..., LabProcess]


def patched_start_peer(original: StartPeer) -> StartPeer:
    """start_peer with Python peers logging their punches and Node peers tracing their rounds."""
    def start_peer(lab: NatLab, host: str, impl: str, **kw: Any) -> LabProcess:
        if impl == "python":
            real = lab.python

            def python(name: str, *args: str, label: str | None = None) -> LabProcess:
                return lab.spawn(name, [sys.executable, "-c", PYTHON_LOGGING, str(ROOT / "run_node.py"), *args],
                                 label=label)
            lab.python = python  # type: ignore[method-assign]
            try:
                return original(lab, host, impl, **kw)
            finally:
                lab.python = real  # type: ignore[method-assign]
        kw["trace"] = True
        return original(lab, host, impl, **kw)
    return start_peer


def counters(lab: NatLab, router: str) -> dict[str, int]:
    ns = lab.ns(router)
    out = run("ip", "netns", "exec", ns, "nft", "-j", "list", "counters", "table", "inet", "hhdiag")
    found = {}
    for item in json.loads(out)["nftables"]:
        if "counter" in item:
            found[item["counter"]["name"]] = item["counter"]["packets"]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--pairs", default="node:node,python:node,node:python,python:python")
    parser.add_argument("--cells", default="consistent/random,random/consistent")
    parser.add_argument("--deadline", type=float, default=40.0)
    args = parser.parse_args()
    cells.start_peer = patched_start_peer(cells.start_peer)
    pairs = [tuple(p.split(":")) for p in args.pairs.split(",")]
    todo = [(*c.split("/"), *p) for c in args.cells.split(",") for p in pairs]
    with NatLab(dht="node", dht_size=10, open_hosts=0, timeout=len(todo) * args.runs * 120 + 60) as lab:
        set_nat = lab.set_nat

        def set_nat_and_count(router: str, nat: str) -> None:
            set_nat(router, nat)
            run("ip", "netns", "exec", lab.ns(router), "nft", "-f", "-", stdin=COUNTERS)
        lab.set_nat = set_nat_and_count  # type: ignore[method-assign]
        logs: dict[str, str] = {}
        stop = lab.stop_process

        def stop_process(process: LabProcess, grace: float = 2) -> None:
            close = process._stderr.close

            def keep_then_close() -> None:
                logs[process.label] = process.stderr_tail(200000)
                close()
            process._stderr.close = keep_then_close  # type: ignore[method-assign]
            stop(process, grace=grace)
        lab.stop_process = stop_process  # type: ignore[method-assign]
        for n in range(args.runs):
            for s_nat, c_nat, s, c in todo:
                started = time.monotonic()
                r = cells.run_cell(lab, s, c, s_nat, c_nat, deadline=args.deadline)
                print(f"=== run {n + 1} {r.cell} {r.pair}: connected={r.connected} {r.seconds} s "
                      f"errors={r.errors} note={r.note!r} ({time.monotonic() - started:.1f} s)")
                for router in ("rA", "rB"):
                    print(f"  {router} probes {counters(lab, router)}")
                for who, lines in (("server", r.server_lines), ("client", r.client_lines)):
                    for line in lines:
                        if line.get("event") in ("trace", "connect-error", "connection", "error"):
                            print(f"  {who}: {json.dumps(line)[:200]}")
                for label, text in logs.items():
                    for row in text.splitlines():
                        if any(word in row for word in ("holepunch", "puncher", "dropped an accepted")):
                            print(f"  {label} log: {row[:220]}")
                logs.clear()
                sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
