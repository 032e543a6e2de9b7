"""Read JSON lines from a child process's stdout with a deadline (no buffered-read pitfalls)."""

from __future__ import annotations

import json
import os
import selectors
import time
from typing import IO, Any


class JsonLineReader:
    """Splits what arrives on a pipe into lines itself, so select() never misses buffered data."""

    def __init__(self, stream: IO[Any]) -> None:
        self.fd = stream.fileno()
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.fd, selectors.EVENT_READ)
        self._buffer = b""
        self.eof = False

    def read(self, deadline: float) -> dict[str, Any] | None:
        """The next JSON object, or None at end of stream or when the deadline passes."""
        end = time.monotonic() + deadline
        while b"\n" not in self._buffer:
            left = end - time.monotonic()
            if self.eof or left <= 0 or not self._sel.select(timeout=left):
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                self.eof = True
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        found: dict[str, Any] = json.loads(line)
        return found

    def close(self) -> None:
        self._sel.close()
