"""A node process does not load what an idle peer never uses (docs/performance.md, "Idle connected peer: RSS").

Checked in a fresh interpreter: the CLI's imports plus one finished Noise handshake.  ``cryptography``
(which noiseprotocol's default backend imports) must never load; the relay, holepunch, TOML and
other commands' modules load on first use.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """
import json, sys
import hyperswarm_hugin.cli
from hyperswarm_hugin.protocol.hugin import KeyPair
from hyperswarm_hugin.protocol.noise import NoiseHandshake

a, b = KeyPair.from_seed(bytes(32)), KeyPair.from_seed(bytes([1]) * 32)
ini = NoiseHandshake(a, initiator=True, remote_public_key=b.public_key)
res = NoiseHandshake(b, initiator=False)
res.recv(ini.send())
ini.recv(res.send())
assert ini.complete and res.complete
print(json.dumps(sorted(sys.modules)))
"""

NEVER = ("cryptography", "prometheus_client", "hypothesis")
ON_FIRST_USE = ("hyperswarm_hugin.blind_relay", "hyperswarm_hugin.protocol.protomux", "hyperswarm_hugin.holepunch",
                "hyperswarm_hugin.holepuncher", "hyperswarm_hugin.cli.cluster", "hyperswarm_hugin.cli.nodes",
                "hyperswarm_hugin.cli.peer", "tomllib")


def test_the_node_path_loads_neither_cryptography_nor_what_a_client_peer_has_not_used() -> None:
    out = subprocess.run([sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    modules = json.loads(out)
    assert "hyperswarm_hugin.protocol.noise" in modules and "hyperswarm_hugin.peer_connect" in modules
    assert [m for m in modules if m.split(".")[0] in NEVER] == []
    assert [m for m in ON_FIRST_USE if m in modules] == []
