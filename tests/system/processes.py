"""Start run_node.py (or an installed ``hyperswarm-hugin``) as a child process, read its JSON lines
with deadlines, always stop it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.lines import JsonLineReader

ROOT = Path(__file__).resolve().parents[2]


class NodeProcess:
    def __init__(self, *args: str, command: list[str] | None = None, cwd: Path = ROOT) -> None:
        """``command`` (default: this interpreter and the checkout's run_node.py) run with ``args``."""
        self.proc = subprocess.Popen(
            [*(command or [sys.executable, str(ROOT / "run_node.py")]), *args],
            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        self._lines = JsonLineReader(self.proc.stdout)

    def read_event(self, deadline: float = 15.0) -> dict[str, Any]:
        """The next JSON line from stdout, or an AssertionError with stderr when none comes."""
        found = self._lines.read(deadline)
        if found is not None:
            return found
        raise AssertionError(f"no JSON line from {self.proc.args}; stderr: {self.stderr_tail()}")

    def wait_for(self, event: str, deadline: float = 15.0) -> dict[str, Any]:
        end = time.monotonic() + deadline
        while True:
            found = self.read_event(max(0.1, end - time.monotonic()))
            if found["event"] == event:
                return found

    def stderr_tail(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        assert self.proc.stderr is not None
        return self.proc.stderr.read()[-2000:]

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def wait(self, timeout: float = 15.0) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """End the process (ours, by pid) if it still runs, and reap it."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._lines.close()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> NodeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def assert_demo_greets(demo: NodeProcess) -> None:
    """``demo``'s three peers find each other, greet each other once each way, and it exits 0."""
    demo.wait_for("testnet")
    messages = [demo.wait_for("message", 30) for _ in range(6)]
    assert {(m["to"], m["from"]) for m in messages} == {
        (a, b) for a in ("peer0", "peer1", "peer2") for b in ("peer0", "peer1", "peer2") if a != b}
    assert all(m["text"] == f"hello from {m['from']}" for m in messages)
    assert demo.wait_for("mesh")["connections"] == 6
    assert demo.wait() == 0
