"""run_node.py peer and demo as a user runs them: JSON lines, data through, refusals, clean stops."""

from __future__ import annotations

import os
import signal

import pytest

from tests.system.processes import NodeProcess, assert_demo_greets

pytestmark = [pytest.mark.system, pytest.mark.timeout(90)]


def test_demo_peers_find_and_greet_each_other() -> None:
    with NodeProcess("demo") as demo:
        assert_demo_greets(demo)


def test_a_source_peer_sends_to_a_sink_peer_and_another_group_is_refused() -> None:
    group = os.urandom(32).hex()
    with NodeProcess("testnet", "--size", "5", "--timeout", "80") as net:
        bootstrap = net.read_event()["bootstrap"][0]
        with NodeProcess("peer", "--bootstrap", bootstrap, "--group", group, "--role", "server",
                         "--mode", "sink", "--timeout", "60") as sink:
            ready = sink.wait_for("ready", 20)
            assert len(bytes.fromhex(ready["publicKey"])) == 32 and len(bytes.fromhex(ready["topic"])) == 32
            with NodeProcess("peer", "--bootstrap", bootstrap, "--group", group, "--role", "client",
                             "--mode", "source", "--bytes", "100000", "--timeout", "60") as source:
                source_key = source.wait_for("ready", 20)["publicKey"]
                connected = source.wait_for("connection", 20)
                assert connected["remotePublicKey"] == ready["publicKey"] and connected["client"] is True
                assert connected["relayed"] is False  # no relay named: never a "direct" line
                received = sink.wait_for("bytes", 20)
                assert received == {"event": "bytes", "remotePublicKey": source_key, "bytesIn": 100000}
                source.signal(signal.SIGTERM)
                assert source.wait() == 0
            with NodeProcess("peer", "--bootstrap", bootstrap, "--group", os.urandom(32).hex(),
                             "--topic", ready["topic"], "--role", "client", "--timeout", "60") as outsider:
                outsider.wait_for("ready", 20)
                refused = sink.wait_for("refused", 20)
                assert refused["reason"] == "bad-mid"
            sink.signal(signal.SIGINT)
            assert sink.wait() == 0
        net.signal(signal.SIGTERM)
        assert net.wait() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["peer", "--group", "00" * 32], "needs --bootstrap"),
        (["peer", "--bootstrap", "127.0.0.1:1"], "exactly one of --group"),
        (["peer", "--bootstrap", "127.0.0.1:1", "--group", "zz"], "--group must be hex"),
        (["peer", "--bootstrap", "127.0.0.1:1", "--group", "00", "--topic", "00"], "--topic must be 32 bytes"),
        (["peer", "--bootstrap", "127.0.0.1:1", "--group", "00", "--bytes", "-1"], "must not be negative"),
        (["demo", "--peers", "1"], "--peers from 2 to 20"),
    ],
)
def test_bad_peer_arguments_exit_2_with_a_clear_message(args: list[str], message: str) -> None:
    with NodeProcess(*args) as proc:
        assert proc.wait() == 2
        assert message in proc.stderr_tail()
