"""Run one of the Node scripts in tests/interop/node and talk JSON lines to it, with deadlines.

Node and the npm packages are required: a missing one fails the test (interop tests never skip).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.lines import JsonLineReader

INTEROP = Path(__file__).resolve().parent


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("interop tests need Node 20 on PATH (`node` not found)")
    if not (INTEROP / "node_modules").is_dir():
        raise RuntimeError("interop tests need the npm packages: run `npm ci` in tests/interop (.ci/install)")
    return node


class StdioNode:
    """A Node script as a child process: ``send()`` a JSON line, ``read()`` one with a deadline."""

    def __init__(self, script: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [node_binary(), str(INTEROP / "node" / script), *args],
            cwd=INTEROP, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        self._lines = JsonLineReader(self.proc.stdout)
        self._next_id = 0

    def send(self, obj: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()

    def read(self, deadline: float = 20.0) -> dict[str, Any]:
        found = self._lines.read(deadline)
        if found is not None:
            return found
        raise AssertionError(f"no line from the Node script; stderr: {self.stderr()}")

    def ready_lines(self) -> list[dict[str, Any]]:
        """The lines that have arrived so far (waits at most 10 ms)."""
        lines = []
        while (found := self._lines.read(0.01)) is not None:
            lines.append(found)
        return lines

    def drain_lines(self, deadline: float = 10.0) -> list[dict[str, Any]]:
        """Every line until the script exits (or ``deadline`` passes)."""
        lines = []
        end = time.monotonic() + deadline
        while (left := end - time.monotonic()) > 0 and (found := self._lines.read(left)) is not None:
            lines.append(found)
        return lines

    def request(self, cmd: str, deadline: float = 30.0, **fields: Any) -> Any:
        """Send ``{"id", "cmd", **fields}`` and return the matching answer's result (blocking)."""
        self._next_id += 1
        rid = self._next_id
        self.send({"id": rid, "cmd": cmd, **fields})
        while True:
            answer = self.read(deadline)
            if answer.get("id") != rid:
                continue
            if "error" in answer:
                raise RuntimeError(f"Node {cmd} failed: {answer['error']}")
            return answer["result"]

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        assert self.proc.stderr is not None
        return self.proc.stderr.read()[-3000:]

    def close(self) -> None:
        """Close stdin (the scripts exit on it), then end the process by pid if it lingers."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self._lines.close()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> StdioNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
