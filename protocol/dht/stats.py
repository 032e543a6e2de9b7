"""Counters a DHT node keeps about its traffic."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(slots=True)
class NodeStats:
    received: int = 0
    dropped_malformed: int = 0
    requests_in: int = 0
    responses_in: int = 0
    app_requests_in: int = 0
    unmatched_responses: int = 0
    bad_ids: int = 0
    requests_out: int = 0
    responses_out: int = 0
    request_timeouts: int = 0
    deferred: int = 0
    check_pings: int = 0
    """Pings sent to decide whether a table node stays (sweep, down hint, full row)."""
    table_removals: int = 0
    """Table nodes dropped because they did not answer with their id."""

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
