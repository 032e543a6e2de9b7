"""Counters a DHT node keeps about its traffic."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

CommandKey = tuple[bool, int]
"""(internal, command): dht-rpc's own commands are internal, an application's (hyperdht's) are not."""


OTHER_COMMAND = -1
"""Where command numbers past ``MAX_COUNTED_COMMAND`` are counted: a sender picks the number, so
the counters stay bounded whatever arrives."""
MAX_COUNTED_COMMAND = 31


def _bump(counts: dict[CommandKey, int], internal: bool, command: int) -> None:
    key = (internal, command if 0 <= command <= MAX_COUNTED_COMMAND else OTHER_COMMAND)
    counts[key] = counts.get(key, 0) + 1


@dataclass(slots=True)
class NodeStats:
    received: int = 0
    dropped_malformed: int = 0
    requests_in: int = 0
    responses_in: int = 0
    unmatched_responses: int = 0
    bad_ids: int = 0
    requests_out: int = 0
    responses_out: int = 0
    request_timeouts: int = 0
    deferred: int = 0
    check_pings: int = 0
    """Pings sent to decide whether a table node stays: the three below together."""
    sweep_pings: int = 0
    """Of those, the 8-tick sweep's (dht-rpc's ``_pingSome``)."""
    full_row_pings: int = 0
    """Of those, a full row's oldest node's when a newcomer came (dht-rpc's ``_repingAndSwap``)."""
    down_hint_pings: int = 0
    """Of those, a DOWN_HINT's (dht-rpc's ``_check`` from ``_onrequest``)."""
    table_removals: int = 0
    """Table nodes dropped because they did not answer with their id."""
    requests_in_by_command: dict[CommandKey, int] = field(default_factory=dict)
    requests_out_by_command: dict[CommandKey, int] = field(default_factory=dict)
    """Requests sent, retries included."""
    responses_in_by_command: dict[CommandKey, int] = field(default_factory=dict)
    """Responses that answered a request of ours, by that request's command."""
    responses_out_by_command: dict[CommandKey, int] = field(default_factory=dict)

    # One call per datagram each way: the counting is written out (no helper call) on purpose.
    def request_in(self, internal: bool, command: int) -> None:
        self.requests_in += 1
        key = (internal, command if 0 <= command <= MAX_COUNTED_COMMAND else OTHER_COMMAND)
        counts = self.requests_in_by_command
        counts[key] = counts.get(key, 0) + 1

    def request_out(self, internal: bool, command: int) -> None:
        self.requests_out += 1
        _bump(self.requests_out_by_command, internal, command)

    def response_in(self, internal: bool, command: int) -> None:
        _bump(self.responses_in_by_command, internal, command)

    def response_out(self, internal: bool, command: int) -> None:
        self.responses_out += 1
        key = (internal, command if 0 <= command <= MAX_COUNTED_COMMAND else OTHER_COMMAND)
        counts = self.responses_out_by_command
        counts[key] = counts.get(key, 0) + 1

    def as_dict(self) -> dict[str, int]:
        """The totals (the per-command counts are the ``*_by_command`` dicts)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.endswith("_by_command")}
