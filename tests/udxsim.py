"""Two sans-IO UDX streams joined by a simulated lossy path, on a fake clock."""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from hyperswarm_hugin.protocol.udx.events import DataReceived, StreamClosed, StreamEnded, UdxEvent
from hyperswarm_hugin.protocol.udx.stream import UdxStream


@dataclass
class Path:
    """Delivers datagrams after ``delay`` (plus jitter), dropping and duplicating at the given rates."""

    rng: random.Random
    loss: float = 0.0
    duplicate: float = 0.0
    delay: float = 0.001
    jitter: float = 0.0
    in_flight: list[tuple[float, int, int, bytes]] = field(default_factory=list)
    seq: int = 0
    sent: int = 0

    def send(self, now: float, to: int, data: bytes) -> None:
        self.sent += 1
        copies = 0 if self.rng.random() < self.loss else 1
        if copies and self.rng.random() < self.duplicate:
            copies = 2
        for _ in range(copies):
            self.seq += 1
            at = now + self.delay + self.rng.random() * self.jitter
            heapq.heappush(self.in_flight, (at, self.seq, to, data))


class EventLog:
    """What an application takes from a stream's ``next_event()``, checked as it goes: bytes
    (never empty) only before the peer's end, at most one end, one close with the stream's own
    error, nothing after the close."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.events: list[UdxEvent] = []  # every event but DataReceived, in order
        self.ended = False
        self.closed = False

    def drain(self, stream: UdxStream) -> None:
        while (event := stream.next_event()) is not None:
            assert not self.closed, f"{event} after the close"
            if isinstance(event, DataReceived):
                assert event.data and not self.ended, event
                self.data += event.data
                continue
            if isinstance(event, StreamEnded):
                assert not self.ended and stream.remote_ended
                self.ended = True
            elif isinstance(event, StreamClosed):
                assert stream.closed and event.error == stream.error
                self.closed = True
            self.events.append(event)
        assert stream.inbox_bytes == 0 and stream.messages_held == 0
        assert self.ended == stream.remote_ended and self.closed == stream.closed


class Pair:
    def __init__(self, rng: random.Random, **path: float) -> None:
        self.a = UdxStream(1)
        self.b = UdxStream(2)
        self.a.connect(2)
        self.b.connect(1)
        self.path = Path(rng, **path)
        self.now = 0.0
        self.log_a = EventLog()
        self.log_b = EventLog()
        self.received_a = self.log_a.data
        self.received_b = self.log_b.data
        self.events_a = self.log_a.events
        self.events_b = self.log_b.events

    def streams(self) -> tuple[UdxStream, UdxStream]:
        return self.a, self.b

    def pump(self) -> None:
        for index, stream in enumerate((self.a, self.b)):
            for data in stream.datagrams_to_send(self.now):
                self.path.send(self.now, 1 - index, data)

    def step(self) -> bool:
        """Advance to the next event; False when nothing is left to happen."""
        self.pump()
        timers = [t for t in (self.a.get_timer(), self.b.get_timer()) if t is not None]
        next_packet = self.path.in_flight[0][0] if self.path.in_flight else None
        candidates = [t for t in (*timers, next_packet) if t is not None]
        if not candidates:
            return False
        self.now = max(self.now, min(candidates))
        while self.path.in_flight and self.path.in_flight[0][0] <= self.now:
            _, _, to, data = heapq.heappop(self.path.in_flight)
            (self.a, self.b)[to].receive_datagram(data, self.now)
        for stream in (self.a, self.b):
            timer = stream.get_timer()
            if timer is not None and timer <= self.now:
                stream.handle_timer(self.now)
        self.log_a.drain(self.a)
        self.log_b.drain(self.b)
        return True


    def run(self, until: float = 600.0, max_steps: int = 2_000_000) -> None:
        for _ in range(max_steps):
            if self.now > until or not self.step():
                return
