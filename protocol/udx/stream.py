"""A UDX stream as a sans-IO state machine (udx.md).

The same five calls as :class:`~hyperswarm_hugin.protocol.dht.node.DHTNode`: feed it datagrams with
:meth:`UdxStream.receive_datagram` and time with :meth:`UdxStream.handle_timer`; take what to
send from :meth:`UdxStream.datagrams_to_send`, when to wake it from :meth:`UdxStream.get_timer`
and what happened from :meth:`UdxStream.next_event` (the events of :mod:`hyperswarm_hugin.protocol.udx.events`:
received bytes, messages, the peer's end, the close).  A stream talks to one peer stream, named
by the id given to :meth:`UdxStream.connect`; which address and socket that peer is at is the
I/O adapter's business, so ``receive_datagram`` takes no address.

Sending follows libudx's rules on the wire (one seq per DATA/END packet, every
packet carrying the current ack and window, SACK blocks for out-of-order data,
DESTROY with the next unused seq).  Congestion control is NewReno-style with
SACK-based loss detection: slow start from 10 packets, halving once per
recovery episode, slow start also left when the delay rises (RFC 9406's trigger), RTO
with libudx's spacing (1 s, then every 2 × RTO, ETIMEDOUT after the 7th expiry).  Once the
adapter gives the path's limit, the payload grows by libudx's in-band MTU search.
Acknowledgements are sent once per batch of received packets, carrying the cumulative
ack (and SACK blocks when a hole exists).
"""

from __future__ import annotations

from collections import deque

from hyperswarm_hugin.protocol.udx.events import (
    DataReceived,
    MessageReceived,
    StreamClosed,
    StreamEnded,
    StreamError,
    UdxEvent,
)
from hyperswarm_hugin.protocol.udx.mtu import MTU_BASE, MTU_OVERHEAD, MtuSearch
from hyperswarm_hugin.protocol.udx.packet import (
    DATA,
    DEFAULT_RWND,
    DESTROY,
    END,
    HEADER_SIZE,
    HEARTBEAT,
    MESSAGE,
    SACK,
    pack_header,
    unpack_header,
)

M32 = 0xFFFFFFFF
INFINITY = float("inf")
DEFAULT_PAYLOAD = 1152
INITIAL_CWND = 10.0
MIN_CWND = 4.0
MAX_CWND = 8192.0
DUP_THRESHOLD = 3
MIN_RTO = 1.0
MAX_RTO = 30.0
MAX_RTO_EXPIRIES = 6
MAX_SACK_BLOCKS = 50
HYSTART_SAMPLES = 8
"""RTT samples a slow-start round needs before its delay is compared with the last round's."""
HYSTART_MIN_THRESH = 0.004
HYSTART_MAX_THRESH = 0.016
"""The rise in a round's minimum RTT that ends slow start: the last round's / 8, within these."""
LINGER = 15.0
RECEIVE_SLACK = 16 * 2048
"""Held beyond the window we advertise before packets are dropped: a sender's rounding."""
RECEIVE_LIMIT = DEFAULT_RWND + RECEIVE_SLACK
"""Received bytes a stream holds at most (out of order, not yet taken, and the reader's backlog)."""
MAX_AHEAD = 8192
"""Out-of-order packets are kept only this many sequence numbers past the ack."""
HELD_COST = 64
"""Bytes of bookkeeping counted for each out-of-order packet held, however small."""
MAX_MESSAGES_HELD = 256
"""UDX MESSAGE datagrams held for a consumer that has not taken them yet."""

ECONNRESET = StreamError.ECONNRESET
ETIMEDOUT = StreamError.ETIMEDOUT


def _unwrap(wire: int, near: int) -> int:
    """The unwrapped sequence number closest to ``near`` whose low 32 bits are ``wire``."""
    return near + (((wire - near + 0x80000000) & M32) - 0x80000000)


class _Sent:
    __slots__ = ("kind", "payload", "pending", "retransmits", "rto_expiries", "sacked", "sent_at")

    def __init__(self, kind: int, payload: bytes, now: float) -> None:
        self.kind = kind
        self.payload = payload
        self.sent_at = now
        self.retransmits = 0
        self.rto_expiries = 0
        self.sacked = False
        self.pending = False  # queued for retransmission


class UdxStream:
    """One direction pair of a UDX stream, identified locally by ``local_id``."""

    def __init__(self, local_id: int, *, max_payload: int = DEFAULT_PAYLOAD) -> None:
        if not 0 <= local_id <= M32:
            raise ValueError("a stream id is a uint32")
        if not 1 <= max_payload <= 2048 - HEADER_SIZE:
            raise ValueError("max_payload must fit a 2048-byte datagram")
        self.local_id = local_id
        self.remote_id: int | None = None
        self.max_payload = max_payload
        # Sending.
        self._queue: deque[bytes] = deque()
        self._head = 0  # bytes of _queue[0] already cut into packets
        self.queued_bytes = 0
        self._next_seq = 0
        self._una = 0
        self._inflight: dict[int, _Sent] = {}
        # The in-flight packets not SACKed, in seq order (dicts keep insertion order and seqs are
        # inserted ascending): loss detection walks only these.
        self._unsacked: dict[int, _Sent] = {}
        self._sacked = 0
        self._retransmit: deque[int] = deque()
        self._scan_limit = 0  # one past the highest SACKed seq
        self._rack_time = 0.0  # send time of the most recently sent packet known delivered
        self._end_wanted = False
        self._end_seq: int | None = None
        self._messages_out: list[bytes] = []
        self.cwnd = INITIAL_CWND
        self.ssthresh = MAX_CWND
        self._recovery_until: int | None = None
        self.peer_rwnd = DEFAULT_RWND
        self._srtt: float | None = None
        # Slow start ends when the delay rises (RFC 9406's trigger), before the queue it builds
        # at the receiver overflows: per round (one window's worth of packets acknowledged), the
        # minimum RTT sample, compared with the previous round's.
        self._round_end = 0
        self._round_min = INFINITY
        self._last_round_min = INFINITY
        self._round_samples = 0
        self._rttvar = 0.0
        self.rto = MIN_RTO
        self._rto_at: float | None = None
        # Receiving.
        self._ack = 0
        self._ooo: dict[int, tuple[bytes, bool]] = {}
        self._ooo_bytes = 0  # payload + HELD_COST per packet in _ooo
        self.receive_limit = RECEIVE_LIMIT
        self.stats_dropped = 0  # received packets dropped because they were beyond what we hold
        self._remote_end: int | None = None
        self._inbox: list[bytes] = []  # in-order payloads not yet taken (one DataReceived)
        self.inbox_bytes = 0
        self._events: deque[UdxEvent] = deque()  # every event but DataReceived
        self.messages_held = 0  # MessageReceived events in _events
        self.backlog = 0
        self._ack_needed = False
        self._advertised = DEFAULT_RWND
        self._probe_at: float | None = None
        self._heartbeat_pending = False
        # Lifecycle.
        self.remote_ended = False
        self.local_ended = False
        self.closed = False
        self.error: StreamError | None = None
        self._destroy_pending = False
        self.linger_until: float | None = None
        self.stats_retransmits = 0
        self.stats_rto = 0
        self.path_mtu = MtuSearch()  # off until the adapter gives the path's limit
        self.stats_slow_start_exits = 0  # slow start left on a delay rise (not a loss)

    # ------------------------------------------------------------------ app side

    @property
    def connected(self) -> bool:
        return self.remote_id is not None

    @property
    def next_seq(self) -> int:
        """The sequence number the next packet will carry (unwrapped)."""
        return self._next_seq

    @property
    def remote_acked(self) -> int:
        """Every packet below this sequence number is acknowledged (unwrapped)."""
        return self._una

    def connect(self, remote_id: int) -> None:
        """Address every packet to ``remote_id``, the id the peer announced (again to change it:
        the peer's stream as seen on another path)."""
        if not 0 <= remote_id <= M32:
            raise ValueError("a stream id is a uint32")
        self.remote_id = remote_id

    def set_mtu_limit(self, limit: int | None) -> None:
        """Start the path MTU search over, up to ``limit`` (the OS's MTU towards the peer; None
        when unknown: 1500).  At or below 1200 there is no search.  The adapter calls this when it
        learns the peer's address and when the stream moves to another path."""
        self.path_mtu.restart(limit)
        self.max_payload = MTU_BASE - MTU_OVERHEAD

    def write(self, data: bytes) -> None:
        """Queue bytes to send; they are cut into packets as the window allows."""
        if self._end_wanted or self.closed:
            raise RuntimeError("write after end or close")
        if data:
            self._queue.append(bytes(data))
            self.queued_bytes += len(data)

    def end(self) -> None:
        """Half-close: an END follows everything written."""
        if not self.closed:
            self._end_wanted = True

    def send_message(self, data: bytes) -> None:
        """An unordered, unreliable datagram (UDX MESSAGE)."""
        if len(data) > 2048 - HEADER_SIZE:
            raise ValueError("a UDX message must fit one datagram")
        if not self.closed:
            self._messages_out.append(bytes(data))

    def destroy(self) -> None:
        """Abort: one DESTROY packet (if connected), then closed."""
        if self.closed:
            return
        self._destroy_pending = self.connected
        self._close(None, now=None)

    @property
    def buffered(self) -> int:
        """Bytes written but not yet acknowledged."""
        return self.queued_bytes + sum(len(p.payload) for p in self._inflight.values())

    @property
    def held_bytes(self) -> int:
        """Received bytes held for the reader: its backlog, the inbox and out-of-order packets."""
        return self.backlog + self.inbox_bytes + self._ooo_bytes

    @property
    def done(self) -> bool:
        """Closed and no longer acknowledging the peer's late packets: nothing more will happen."""
        return self.closed and self.linger_until is None

    def next_event(self) -> UdxEvent | None:
        """What happened, one event per call, or None when nothing is pending (then call again
        after the next ``receive_datagram``, ``handle_timer`` or ``destroy``).

        The bytes delivered in order since the last call come first, joined into one
        :class:`DataReceived` (per drain, not per packet); then the other events in the order
        they happened.  Delivered bytes always precede the peer's END and the close, so taking
        them first keeps the order of :mod:`hyperswarm_hugin.protocol.udx.events`.  It never raises."""
        if self.inbox_bytes:
            parts = self._inbox
            data = parts[0] if len(parts) == 1 else b"".join(parts)
            parts.clear()
            self.inbox_bytes = 0
            return DataReceived(data)
        events = self._events
        if not events:
            return None
        event = events.popleft()
        if type(event) is MessageReceived:
            self.messages_held -= 1
        return event

    # ------------------------------------------------------------------ receiving

    def receive_datagram(self, data: bytes, now: float) -> None:
        """Process one datagram addressed to this stream (its header names our id; the adapter
        routed it here).  Malformed or unexpected packets are dropped; nothing is raised."""
        if len(data) < HEADER_SIZE:
            return
        _, _, kind, doff, _, rwnd, seq_w, ack_w = unpack_header(data)
        if kind == DATA and not doff and seq_w == self._ack & M32 and len(data) > HEADER_SIZE \
                and not self._ooo and not self.closed and not self.remote_ended:
            # The usual packet, spelled out: the next data in order, nothing else in it, nothing
            # held out of order (the general path below does the same for it).
            self._ack_needed = True
            payload = data[HEADER_SIZE:]
            if self.backlog + self.inbox_bytes + self._ooo_bytes + len(payload) > self.receive_limit:
                self.stats_dropped += 1  # beyond the window we advertised: resent later
            else:
                self._inbox.append(payload)
                self.inbox_bytes += len(payload)
                self._ack += 1
            sacking = rest = 0
        else:
            if self.closed:
                if self.linger_until is not None and now < self.linger_until and kind & (DATA | END):
                    self._ack_needed = True
                return
            if kind & HEARTBEAT:
                self._ack_needed = True
                return
            rest = len(data) - HEADER_SIZE
            sacking = kind & SACK and not kind & (DATA | END | MESSAGE)
            if not sacking and doff > rest:
                return
            # (_unwrap and held_bytes spelled out here and below: this runs for every packet)
            seq = self._ack + (((seq_w - self._ack + 0x80000000) & M32) - 0x80000000)
            if kind & (DATA | END):
                self._ack_needed = True
                if seq >= self._ack and not self.remote_ended:
                    payload = data[HEADER_SIZE + doff:] if kind & DATA else b""
                    held_bytes = self.backlog + self.inbox_bytes + self._ooo_bytes
                    if seq == self._ack:
                        if held_bytes + len(payload) > self.receive_limit:
                            self.stats_dropped += 1  # beyond the window we advertised: resent later
                        else:
                            if kind == DATA and payload:  # _deliver, spelled out for plain data
                                self._inbox.append(payload)
                                self.inbox_bytes += len(payload)
                                self._ack += 1
                            else:
                                self._deliver(payload, bool(kind & END))
                            ooo = self._ooo
                            while ooo and self._ack in ooo:
                                held, is_end = ooo.pop(self._ack)
                                self._ooo_bytes -= len(held) + HELD_COST
                                self._deliver(held, is_end)
                    elif seq not in self._ooo:
                        cost = len(payload) + HELD_COST
                        if seq - self._ack >= MAX_AHEAD or held_bytes + cost > self.receive_limit:
                            self.stats_dropped += 1
                        else:
                            self._ooo[seq] = (payload, bool(kind & END))
                            self._ooo_bytes += cost
            if kind & DESTROY:
                if seq >= self._ack:
                    self._close(ECONNRESET, now)
                return
            if kind & MESSAGE:
                if self.messages_held < MAX_MESSAGES_HELD:
                    self._events.append(MessageReceived(data[HEADER_SIZE + doff:]))
                    self.messages_held += 1
                else:
                    self.stats_dropped += 1
        ack = self._una + (((ack_w - self._una + 0x80000000) & M32) - 0x80000000)
        if ack > self._next_seq:
            self._ack_needed = False  # libudx: such a packet is not acknowledged
            return
        self.peer_rwnd = rwnd
        newly = self._on_ack(ack, now) if ack > self._una else 0
        if sacking:
            length = doff if 0 < doff < rest else rest
            for i in range(min(length // 8, MAX_SACK_BLOCKS * 4)):
                off = HEADER_SIZE + 8 * i
                start = _unwrap(int.from_bytes(data[off:off + 4], "little"), self._una)
                end = _unwrap(int.from_bytes(data[off + 4:off + 8], "little"), self._una)
                if self._una <= start < end <= self._next_seq:
                    self._on_sack(start, end)
            self._detect_losses()
        if newly:
            self._grow(newly)
        if self.local_ended and self.remote_ended:
            self._check_finished(now)

    def _deliver(self, payload: bytes, is_end: bool) -> None:
        if payload:
            self._inbox.append(payload)
            self.inbox_bytes += len(payload)
        if is_end and not self.remote_ended:
            self._remote_end = self._ack
            self.remote_ended = True
            self._events.append(StreamEnded())
        self._ack += 1

    def _on_ack(self, ack: int, now: float) -> int:
        """Take the packets below ``ack`` out of flight.  One RTT sample per acknowledgement, from
        the newest packet it acknowledges that was never retransmitted (libudx samples every
        packet; a Node receiver acknowledges each one, and the adapter passes on only the last of
        a drain's plain ACKs, so this is the sample of that ACK's own packet)."""
        newly = 0
        inflight = self._inflight
        unsacked = self._unsacked
        una = self._una
        latest = self._rack_time
        sample = -1.0
        while una < ack:
            sent = inflight.pop(una, None)
            if sent is not None:
                unsacked.pop(una, None)
                newly += 1
                if sent.sacked:
                    self._sacked -= 1
                else:
                    sent_at = sent.sent_at
                    if sent.retransmits == 0:
                        sample = sent_at
                    if sent_at > latest:
                        latest = sent_at
            una += 1
        self._una = una
        self._rack_time = latest
        if sample >= 0.0:
            # _rtt_sample, spelled out for the usual case
            rtt = now - sample
            srtt = self._srtt
            if srtt is None:
                self._rtt_sample(rtt)
            else:
                rttvar = self._rttvar = (3 * self._rttvar + abs(srtt - rtt)) / 4
                srtt = self._srtt = (7 * srtt + rtt) / 8
                rto = srtt + 4 * rttvar
                self.rto = MIN_RTO if rto < MIN_RTO else MAX_RTO if rto > MAX_RTO else rto
            if self.cwnd < self.ssthresh and self._recovery_until is None:
                self._slow_start_delay(rtt)
        if newly:
            self._rto_at = now + self.rto if inflight else None
            if self._end_seq is not None and self._una > self._end_seq:
                self.local_ended = True
            search = self.path_mtu
            if search.active and search.acked_below(una):
                self.max_payload = search.mtu - MTU_OVERHEAD
        return newly

    def _slow_start_delay(self, rtt: float) -> None:
        """RFC 9406 (HyStart++)'s delay trigger, without its conservative phase: leave slow start
        once this round's minimum RTT exceeds the last round's by an eighth (4-16 ms).  A queue
        has then started to build at the bottleneck; slow start would double it every round
        until packets drop (a libudx receiver's 2 MiB socket buffer, on loopback)."""
        if self._una >= self._round_end:  # the round's last packet is acknowledged: a new one
            self._last_round_min = self._round_min
            self._round_min = rtt
            self._round_samples = 1
            self._round_end = self._next_seq
            return
        if rtt < self._round_min:
            self._round_min = rtt
        self._round_samples += 1
        last = self._last_round_min
        if self._round_samples >= HYSTART_SAMPLES and last != INFINITY:
            thresh = last / 8
            thresh = HYSTART_MIN_THRESH if thresh < HYSTART_MIN_THRESH else min(thresh, HYSTART_MAX_THRESH)
            if self._round_min >= last + thresh:
                self.ssthresh = max(self.cwnd, MIN_CWND)
                self.stats_slow_start_exits += 1

    def _on_sack(self, start: int, end: int) -> None:
        inflight = self._inflight
        search = self.path_mtu
        if search.active and search.sacked(start, end):
            self.max_payload = search.mtu - MTU_OVERHEAD
        for seq in range(start, end):
            sent = inflight.get(seq)
            if sent is not None and not sent.sacked:
                sent.sacked = True
                del self._unsacked[seq]
                self._sacked += 1
                if sent.sent_at > self._rack_time:
                    self._rack_time = sent.sent_at
                if seq >= self._scan_limit:
                    self._scan_limit = seq + 1

    def _detect_losses(self) -> None:
        """SACK-based loss detection: a hole three packets below the highest SACKed one, or a
        packet sent before one that was delivered since (RACK: this catches lost retransmissions)."""
        limit = self._scan_limit
        if limit <= self._una:
            return
        reorder = (self._srtt or 0.0) / 4
        deadline = self._rack_time - reorder
        fack = limit - DUP_THRESHOLD
        lost = False
        for seq, sent in self._unsacked.items():
            if seq >= limit:
                break
            if sent.pending:
                continue
            if (seq < fack and sent.retransmits == 0) or sent.sent_at < deadline:
                sent.pending = True
                self._retransmit.append(seq)
                lost = True
            elif seq >= fack and sent.retransmits == 0:
                break  # every later packet was first sent after this one, so after the deadline
        if lost and self._recovery_until is None:
            self.ssthresh = max(self.cwnd / 2, MIN_CWND)
            self.cwnd = self.ssthresh
            self._recovery_until = self._next_seq

    def _grow(self, newly: int) -> None:
        if not newly:
            return
        if self._recovery_until is not None:
            if self._una >= self._recovery_until:
                self._recovery_until = None
            return
        if self.cwnd < self.ssthresh:
            self.cwnd = min(self.cwnd + newly, MAX_CWND)
        else:
            self.cwnd = min(self.cwnd + newly / self.cwnd, MAX_CWND)

    def _rtt_sample(self, rtt: float) -> None:
        srtt = self._srtt
        if srtt is None:
            srtt = rtt
            rttvar = rtt / 2
        else:
            rttvar = (3 * self._rttvar + abs(srtt - rtt)) / 4
            srtt = (7 * srtt + rtt) / 8
        self._srtt = srtt
        self._rttvar = rttvar
        rto = srtt + 4 * rttvar  # clamped to [MIN_RTO, MAX_RTO]
        self.rto = MIN_RTO if rto < MIN_RTO else MAX_RTO if rto > MAX_RTO else rto

    @property
    def srtt(self) -> float | None:
        return self._srtt

    # ------------------------------------------------------------------ sending

    def _window(self) -> int:
        if self.peer_rwnd == 0:
            return 0
        return min(int(self.cwnd), max(1, self.peer_rwnd // self.max_payload))

    def _advertised_window(self) -> int:
        window = DEFAULT_RWND - self.backlog - self.inbox_bytes
        return window if window >= self.max_payload else 0

    def set_backlog(self, unread: int) -> bool:
        """The application holds ``unread`` received bytes; True when a window update should go out."""
        self.backlog = unread
        if self._advertised < DEFAULT_RWND // 4 <= self._advertised_window() and not self.closed:
            self._ack_needed = True
            return True
        return False

    def _packet(self, kind: int, seq: int, payload: bytes = b"") -> bytes:
        assert self.remote_id is not None
        window = DEFAULT_RWND - self.backlog - self.inbox_bytes  # _advertised_window, spelled out
        if window < self.max_payload:
            window = 0
        self._advertised = window
        return pack_header(0xFF, 1, kind, 0, self.remote_id, window, seq & M32, self._ack & M32) + payload

    def _probe(self, seq: int, payload: bytes) -> bytes:
        """A new DATA packet, padded (doff) to the size being probed when that takes 0-255 bytes
        (udx.md §8); else as it is, and the next one is tried."""
        padding = self.path_mtu.padding(len(payload))
        if padding is None:
            return self._packet(DATA, seq, payload)
        self.path_mtu.sent(seq)
        header = self._packet(DATA, seq)
        return header[:3] + bytes((padding,)) + header[4:] + bytes(padding) + payload

    def datagrams_to_send(self, now: float) -> list[bytes]:
        """Everything that should go out now, in order."""
        out: list[bytes] = []
        if self.remote_id is None:
            return out
        if self._destroy_pending:
            self._destroy_pending = False
            out.append(self._packet(DESTROY, self._next_seq))
            self._next_seq += 1
            return out
        if self.closed:
            if self._ack_needed:
                self._ack_needed = False
                out.append(self._packet(0, self._next_seq))
            return out
        inflight = self._inflight
        while self._retransmit:
            seq = self._retransmit.popleft()
            sent = inflight.get(seq)
            if sent is None or sent.sacked:
                continue
            sent.pending = False
            sent.retransmits += 1
            sent.sent_at = now
            self.stats_retransmits += 1
            self.path_mtu.retransmitting(seq)
            out.append(self._packet(sent.kind, seq, sent.payload))
        if self._heartbeat_pending:
            self._heartbeat_pending = False
            out.append(self._packet(HEARTBEAT, self._next_seq))
        window = self._window()
        queue = self._queue
        while len(inflight) - self._sacked < window:
            if queue:
                if len(queue) == 1 and not self._head and len(queue[0]) <= self.max_payload:
                    payload = queue.popleft()  # one small write (the usual message): as it is
                    self.queued_bytes -= len(payload)
                else:
                    payload = self._take_payload()
                kind = DATA
            elif self._end_wanted and self._end_seq is None:
                payload = b""
                kind = END
                self._end_seq = self._next_seq
            else:
                break
            seq = self._next_seq
            self._next_seq += 1
            inflight[seq] = self._unsacked[seq] = _Sent(kind, payload, now)
            if kind == DATA and self.path_mtu.probe_wanted:
                out.append(self._probe(seq, payload))
            else:
                out.append(self._packet(kind, seq, payload))
        if out and self._rto_at is None and inflight:
            self._rto_at = now + self.rto
        if window == 0 and not inflight and (queue or (self._end_wanted and self._end_seq is None)):
            if self._probe_at is None:  # zero window: probe with heartbeats (libudx does the same)
                self._probe_at = now + self.rto
        else:
            self._probe_at = None
        if self._messages_out:
            for message in self._messages_out:
                out.append(self._packet(MESSAGE, self._next_seq, message))
            self._messages_out.clear()
        if self._ack_needed:
            self._ack_needed = False
            if self._ooo:
                out.append(self._sack_packet())
            elif not out:
                out.append(self._packet(0, self._next_seq))
        return out

    def _take_payload(self) -> bytes:
        """The next payload: up to ``max_payload`` queued bytes, across writes if need be.  A long
        write is cut from an offset into it (no copy of its remainder per packet)."""
        queue = self._queue
        limit = self.max_payload
        first = queue[0]
        head = self._head
        left = len(first) - head
        if left >= limit or (left < limit and len(queue) == 1):
            if head == 0 and left <= limit:
                queue.popleft()
                self.queued_bytes -= left
                return first
            take = min(left, limit)
            payload = first[head:head + take]
            if take == left:
                queue.popleft()
                self._head = 0
            else:
                self._head = head + take
            self.queued_bytes -= take
            return payload
        parts: list[bytes] = []
        size = 0
        while queue and size < limit:
            chunk = queue[0]
            head = self._head
            left = len(chunk) - head
            take = limit - size
            if left <= take:
                parts.append(chunk[head:] if head else chunk)
                queue.popleft()
                self._head = 0
                size += left
            else:
                parts.append(chunk[head:head + take])
                self._head = head + take
                size += take
        self.queued_bytes -= size
        return b"".join(parts)

    def _sack_packet(self) -> bytes:
        blocks: list[tuple[int, int]] = []
        for seq in sorted(self._ooo):
            if blocks and blocks[-1][1] == seq:
                blocks[-1] = (blocks[-1][0], seq + 1)
            elif len(blocks) < MAX_SACK_BLOCKS:
                blocks.append((seq, seq + 1))
            else:
                break
        body = b"".join((s & M32).to_bytes(4, "little") + (e & M32).to_bytes(4, "little") for s, e in blocks)
        return self._packet(SACK, self._next_seq, body)

    # ------------------------------------------------------------------ time and lifecycle

    def get_timer(self) -> float | None:
        if self.closed:
            return self.linger_until
        if self._probe_at is not None and (self._rto_at is None or self._probe_at < self._rto_at):
            return self._probe_at
        return self._rto_at

    def handle_timer(self, now: float) -> None:
        if self.closed:
            if self.linger_until is not None and now >= self.linger_until:
                self.linger_until = None
            return
        if self._probe_at is not None and now >= self._probe_at:
            self._heartbeat_pending = True
            self._probe_at = now + 2 * self.rto
        if self._rto_at is None or now < self._rto_at:
            return
        if not self._inflight:
            self._rto_at = None
            return
        oldest = self._inflight.get(self._una)
        if oldest is None:
            oldest = self._inflight[min(self._inflight)]
        if oldest.rto_expiries >= MAX_RTO_EXPIRIES:
            if self.remote_ended and len(self._inflight) == 1 and oldest.kind & END:
                # Everything of ours was acknowledged but our END, and the peer had ended too: it
                # closed after acknowledging our END, and that acknowledgement was lost.  A clean end.
                self._close(None, now)
                self.linger_until = now + LINGER
            else:
                self._close(ETIMEDOUT, now)
            return
        oldest.rto_expiries += 1
        self.stats_rto += 1
        self.ssthresh = max(self.cwnd / 2, MIN_CWND)
        self.cwnd = MIN_CWND
        self._recovery_until = self._next_seq
        for seq, sent in self._inflight.items():
            if not sent.sacked and not sent.pending and (seq == self._una or now - sent.sent_at >= self.rto):
                sent.pending = True
                self._retransmit.append(seq)
        self._rto_at = now + 2 * self.rto

    def _check_finished(self, now: float) -> None:
        if self.local_ended and self.remote_ended and not self.closed:
            self._close(None, now)
            self.linger_until = now + LINGER

    def _close(self, error: StreamError | None, now: float | None) -> None:
        self.closed = True
        self.error = error
        self._events.append(StreamClosed(error))
        self._queue.clear()
        self._head = 0
        self.queued_bytes = 0
        self._inflight.clear()
        self._unsacked.clear()
        self._retransmit.clear()
        self._rto_at = None
        self._ooo.clear()
        self._ooo_bytes = 0
