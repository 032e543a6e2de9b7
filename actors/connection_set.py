"""The swarm's connections: one live connection per remote key, and the counts its limits read.

What hyperswarm's lib/connection-set.js and the connection counters of its ``Hyperswarm`` keep;
the SwarmActor decides what to do with them.  A client connection is *reserved* before its dial
starts (it counts against ``max_parallel`` and ``max_client_connections`` at once) and *opened*
when the dial succeeds; a server connection is added opened.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(slots=True)
class ConnectionRecord:
    public_key: bytes
    client: bool
    opened: bool
    queued: bool = False
    """A client dial taken from the queue (flushes wait for those)."""


class ConnectionSet:
    def __init__(self) -> None:
        self._records: dict[int, ConnectionRecord] = {}
        self._by_key: dict[bytes, int] = {}
        self._ids = itertools.count(1)
        self.connecting = 0
        """Client dials reserved and not yet opened or ended."""
        self.client_connections = 0
        self.server_connections = 0

    def __len__(self) -> int:
        """Remote keys with a connection (what ``max_peers`` limits)."""
        return len(self._by_key)

    def __contains__(self, public_key: object) -> bool:
        return public_key in self._by_key

    def __iter__(self) -> Iterator[int]:
        return iter(list(self._records))

    def get(self, conn_id: int) -> ConnectionRecord | None:
        return self._records.get(conn_id)

    def current(self, public_key: bytes) -> int | None:
        """The id of the key's connection, if it has one."""
        return self._by_key.get(public_key)

    def is_current(self, conn_id: int, record: ConnectionRecord) -> bool:
        return self._by_key.get(record.public_key) == conn_id

    def reserve(self, public_key: bytes, queued: bool) -> int:
        """A client connection to ``public_key`` about to be dialled: its id."""
        conn_id = next(self._ids)
        self._records[conn_id] = ConnectionRecord(public_key, client=True, opened=False, queued=queued)
        self._by_key[public_key] = conn_id
        self.connecting += 1
        self.client_connections += 1
        return conn_id

    def release(self, conn_id: int) -> ConnectionRecord | None:
        """Undo a reservation whose dial never started."""
        record = self.remove(conn_id)
        if record is not None:
            self.connecting -= 1
            self.count_closed(record)
        return record

    def add_incoming(self, conn_id: int, public_key: bytes) -> None:
        self._records[conn_id] = ConnectionRecord(public_key, client=False, opened=True)
        self._by_key[public_key] = conn_id
        self.server_connections += 1

    def displace(self, public_key: bytes) -> None:
        """The key's connection stays open until it ends, but is no longer the key's connection."""
        del self._by_key[public_key]

    def remove(self, conn_id: int) -> ConnectionRecord | None:
        """Forget a connection that ended.  The counts are the caller's to lower, with
        :meth:`count_closed` (and ``connecting`` for a dial that never opened), when its limits
        should stop counting it."""
        record = self._records.pop(conn_id, None)
        if record is not None and self._by_key.get(record.public_key) == conn_id:
            del self._by_key[record.public_key]
        return record

    def count_closed(self, record: ConnectionRecord) -> None:
        if record.client:
            self.client_connections -= 1
        else:
            self.server_connections -= 1

    def dials_pending(self) -> int:
        """Client dials not yet opened whose key still has a connection."""
        return sum(1 for r in self._records.values() if not r.opened and r.public_key in self._by_key)
