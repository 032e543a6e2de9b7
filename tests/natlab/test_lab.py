"""The lab itself: its NATs map ports as the spec says, it refuses to run without its tools, and
it leaves no namespace or process behind, also when the body raises."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

from tests.natlab import lab as natlab
from tests.natlab.conftest import require_lab
from tests.natlab.lab import NatLab, list_namespaces

pytestmark = [pytest.mark.natlab, pytest.mark.timeout(60)]


def seen_from(lab: NatLab, host: str, targets: list[str]) -> list[tuple[str, int]]:
    """The source addresses the public mirror saw for datagrams from ONE socket in ``host``."""
    probe = lab.spawn(host, [sys.executable, "-m", "tests.natlab.udp_echo", "probe", "--to", ",".join(targets),
                             "--timeout", "3"])
    probe.wait_for("done", 15)
    lab.stop_process(probe)
    return [(line["to"][0], line["to"][1]) for line in probe.lines if line["event"] == "seen"]


def test_routers_map_ports_by_nat_type() -> None:
    require_lab()
    with NatLab("consistent", "random", dht=None, open_hosts=1) as lab:
        mirror = lab.spawn("inet", [sys.executable, "-m", "tests.natlab.udp_echo", "serve", "--host",
                                    lab.ip["inet"], "--ports", "4", "--timeout", "50"])
        targets = [f"{lab.ip['inet']}:{p}" for p in mirror.wait_for("ready", 10)["ports"]]

        consistent = seen_from(lab, "hA", targets)
        assert len(consistent) == 4 and set(consistent) == {consistent[0]}
        assert consistent[0][0] == "192.88.99.2"

        random = seen_from(lab, "hB", targets)
        assert len(random) == 4 and {h for h, _ in random} == {"192.88.99.3"}
        assert len({p for _, p in random}) == 4, random

        lab.set_nat("rA", "fully-random")
        assert "fully-random" in lab.ruleset("rA") and "ct state new drop" in lab.ruleset("rA")
        fully = seen_from(lab, "hA", targets)
        assert len({p for _, p in fully}) == 4, fully

        public = seen_from(lab, "o1", targets)
        assert len(public) == 4 and {h for h, _ in public} == {lab.ip["o1"]}


def test_teardown_removes_namespaces_and_processes_when_the_body_raises() -> None:
    require_lab()
    with pytest.raises(RuntimeError, match="boom"), NatLab(dht=None) as lab:
        made = lab.namespaces
        sleeper = lab.spawn("hA", [sys.executable, "-m", "tests.natlab.udp_echo", "serve", "--host", "0.0.0.0",
                                   "--timeout", "50"])
        sleeper.wait_for("ready", 10)
        assert len(made) == 5 and set(made) <= set(list_namespaces())
        raise RuntimeError("boom")
    assert sleeper.proc.returncode is not None
    assert not set(made) & set(list_namespaces())
    assert not lab.processes


def test_requirements_name_the_missing_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(shutil, "which", lambda tool: None if tool == "nft" else f"/usr/bin/{tool}")
    problem = natlab.requirements_problem()
    assert problem is not None and "nft" in problem and ".ci/install" in problem
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "root" in (natlab.requirements_problem() or "")
