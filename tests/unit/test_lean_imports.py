"""A node process does not load what it never uses (docs/performance.md, "Idle connected peer: RSS").

Checked in fresh interpreters.  The peer command's path (the CLI, ``cli.peer`` and one finished
Noise handshake) must never load ``cryptography`` (which noiseprotocol's default backend
imports); the relay, holepunch, announcer, TOML and other commands' modules load on first use.
The package's public names load with the first use of one of them (PEP 562), so the CLI's
dispatch and the ``dht`` command do not load the swarm.  On the standard event loop the command
line loads asyncio without ``ssl``, which stays importable for whoever needs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

HANDSHAKE = """
from hyperswarm_hugin.protocol.hugin import KeyPair
from hyperswarm_hugin.protocol.noise import NoiseHandshake

a, b = KeyPair.from_seed(bytes(32)), KeyPair.from_seed(bytes([1]) * 32)
ini = NoiseHandshake(a, initiator=True, remote_public_key=b.public_key)
res = NoiseHandshake(b, initiator=False)
res.recv(ini.send())
ini.recv(res.send())
assert ini.complete and res.complete
"""

NEVER = ("cryptography", "prometheus_client", "hypothesis")
ON_FIRST_USE = ("hyperswarm_hugin.blind_relay", "hyperswarm_hugin.protocol.protomux", "hyperswarm_hugin.holepunch",
                "hyperswarm_hugin.holepuncher", "hyperswarm_hugin.announcer",
                "hyperswarm_hugin.protocol.hyperdht.announcer", "hyperswarm_hugin.cli.cluster",
                "hyperswarm_hugin.cli.nodes", "tomllib", "hyperswarm_hugin.actors.recvmmsg", "ctypes")
SWARM = ("hyperswarm_hugin.swarm", "hyperswarm_hugin.swarm_host", "hyperswarm_hugin.discovery",
         "hyperswarm_hugin.actors.swarm_actor", "hyperswarm_hugin.actors.topic_actor")


def modules_after(program: str) -> list[str]:
    """The names in ``sys.modules`` once ``program`` has run in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", program + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60, check=True).stdout
    modules: list[str] = json.loads(out.splitlines()[-1])
    return modules


def test_the_peer_path_loads_neither_cryptography_nor_what_a_client_peer_has_not_used() -> None:
    modules = modules_after("import hyperswarm_hugin.cli, hyperswarm_hugin.cli.peer\n" + HANDSHAKE)
    assert "hyperswarm_hugin.protocol.noise" in modules and "hyperswarm_hugin.peer_connect" in modules
    assert [m for m in modules if m.split(".")[0] in NEVER] == []
    assert [m for m in ON_FIRST_USE if m in modules] == []


@pytest.mark.parametrize("program", ["import hyperswarm_hugin", "import hyperswarm_hugin.cli",
                                     "import hyperswarm_hugin.cli.nodes"])
def test_the_package_and_the_dht_command_do_not_load_the_swarm(program: str) -> None:
    modules = modules_after(program)
    assert [m for m in SWARM if m in modules] == []
    assert [m for m in modules if m.split(".")[0] in NEVER] == []
    if program != "import hyperswarm_hugin.cli.nodes":  # a DHT answers connect(): peer_connect
        assert "hyperswarm_hugin.peer_connect" not in modules
    if program == "import hyperswarm_hugin":
        assert [m for m in modules if m.startswith("hyperswarm_hugin.")] == []


def test_every_public_name_loads_on_first_use() -> None:
    program = """
import hyperswarm_hugin
from hyperswarm_hugin.swarm import Hyperswarm
assert "hyperswarm_hugin.dht" in __import__("sys").modules
for name in hyperswarm_hugin.__all__:
    value = getattr(hyperswarm_hugin, name)
    assert getattr(value, "__name__", name) == name, (name, value)
assert hyperswarm_hugin.Hyperswarm is Hyperswarm
try:
    hyperswarm_hugin.NotAName
except AttributeError:
    pass
else:
    raise AssertionError("an unknown name resolved")
from hyperswarm_hugin import *  # noqa: F403
"""
    assert "hyperswarm_hugin.swarm" in modules_after(program)


def test_the_command_line_on_the_standard_loop_runs_without_ssl_and_leaves_it_importable() -> None:
    program = """
import sys
from hyperswarm_hugin.cli import main
assert main(["testnet", "--size", "1", "--timeout", "0.2"]) == 0
assert "asyncio" in sys.modules and "ssl" not in sys.modules
assert sys.modules["asyncio.base_events"].ssl is None  # asyncio itself refuses TLS
import ssl
ssl.create_default_context()
from prometheus_client import exposition  # what --metrics-port loads imports ssl
"""
    env = {**os.environ, "HYPERSWARM_HUGIN_LOOP": "asyncio"}
    out = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env=env)
    assert out.returncode == 0, out.stderr
    assert '"event": "testnet"' in out.stdout


def test_asyncio_already_loaded_is_left_as_it_is() -> None:
    import asyncio.base_events

    from hyperswarm_hugin.cli import import_asyncio_without_ssl

    before = asyncio.base_events.ssl
    import_asyncio_without_ssl()
    assert asyncio.base_events.ssl is before and sys.modules.get("ssl", False) is not None


@pytest.mark.parametrize("choice", ["asyncio", "uvloop", "auto"])
def test_the_loop_choice_is_known_before_asyncio_loads(monkeypatch: pytest.MonkeyPatch, choice: str) -> None:
    """standard_loop_chosen() (asked before asyncio loads) agrees with the loop run() will take."""
    import importlib.util

    from hyperswarm_hugin import event_loop

    monkeypatch.setenv("HYPERSWARM_HUGIN_LOOP", choice)
    uvloop_installed = importlib.util.find_spec("uvloop") is not None
    standard = choice == "asyncio" or (choice == "auto" and not uvloop_installed)
    assert event_loop.standard_loop_chosen() is standard
    if choice == "uvloop" and not uvloop_installed:
        with pytest.raises(ImportError):
            event_loop.loop_factory()
    else:
        assert (event_loop.loop_factory() is None) is standard
