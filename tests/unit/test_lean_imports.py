"""A node process does not load what an idle peer never uses (docs/performance.md, "Idle connected peer: RSS").

Checked in a fresh interpreter: the CLI's imports plus one finished Noise handshake.
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

NOT_LOADED = ("cryptography", "prometheus_client", "hypothesis")


def test_the_node_path_never_imports_cryptography_metrics_or_hypothesis() -> None:
    out = subprocess.run([sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    modules = json.loads(out)
    assert "hyperswarm_hugin.protocol.noise" in modules
    assert [m for m in modules if m.split(".")[0] in NOT_LOADED] == []
