"""run_node.py as a user runs it: JSON lines on stdout, clean stops, clear errors."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hyperswarm_hugin.protocol.dht.ids import node_id
from tests.system.processes import ROOT, NodeProcess

pytestmark = [pytest.mark.system, pytest.mark.timeout(60)]


def test_testnet_prints_its_bootstrap_and_stops_on_sigterm() -> None:
    with NodeProcess("testnet", "--size", "4", "--host", "127.0.0.1") as net:
        first = net.read_event()
        assert first["event"] == "testnet"
        assert len(first["bootstrap"]) == 1 and first["bootstrap"][0].startswith("127.0.0.1:")
        assert len(first["nodes"]) == 4
        net.signal(signal.SIGTERM)
        assert net.wait() == 0


def test_dht_node_joins_a_testnet_and_stops_after_its_timeout() -> None:
    with NodeProcess("testnet", "--size", "3", "--timeout", "30") as net:
        bootstrap = net.read_event()["bootstrap"][0]
        with NodeProcess("dht", "--host", "127.0.0.1", "--port", "0", "--bootstrap", bootstrap,
                         "--timeout", "3") as node:
            listening = node.read_event()
            assert set(listening) == {"event", "host", "port", "id"}
            assert listening["event"] == "listening" and listening["host"] == "127.0.0.1"
            assert listening["id"] == node_id(("127.0.0.1", listening["port"])).hex()
            ready = node.wait_for("ready")
            assert ready["id"] == listening["id"] and ready["ephemeral"] is False
            stats = node.wait_for("stats")
            assert stats["table_size"] == 3
            assert node.wait_for("close")
            assert node.wait() == 0
        net.signal(signal.SIGINT)
        assert net.wait() == 0


def test_config_file_is_read_and_flags_override_it(tmp_path: Path) -> None:
    cfg = tmp_path / "node.toml"
    cfg.write_text('[testnet]\nsize = 2\ntimeout = 0.5\n')
    with NodeProcess("--config", str(cfg), "testnet", "--size", "3") as net:
        assert len(net.read_event()["nodes"]) == 3
        assert net.wait() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["dht", "--host", "127.0.0.1"], "needs --bootstrap"),
        (["dht", "--bootstrap", "nonsense"], "expected host:port"),
        (["dht", "--bootstrap", "127.0.0.1:99999"], "port out of range"),
        (["dht", "--bootstrap", "", "--port", "70000"], "port out of range"),
        (["testnet", "--size", "0"], "size must be"),
        (["testnet", "--host", "example.org"], "not an IPv4 address"),
        (["testnet", "--timeout", "-1"], "timeout must be positive"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(args: list[str], message: str) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "run_node.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == ""
