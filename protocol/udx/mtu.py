"""A UDX stream's path MTU search (udx.md §8, as libudx does it).

Off until the I/O adapter gives the path's limit (the OS's MTU towards the peer).  From the
stream's first acknowledgement, one new DATA packet at a time is padded (the header's ``doff``)
to the size being tried; once that packet is acknowledged the stream's packets may be that
large and the next size (32 bytes more, up to the limit) is tried.  A padded packet that is lost
goes again unpadded; three lost probes at one size end the search there.
"""

from __future__ import annotations

MTU_OVERHEAD = 48
"""IPv4 + UDP + UDX headers: a packet's MTU is its payload plus this (udx.md §8)."""
MTU_BASE = 1200
MTU_MAX = 1500
MTU_STEP = 32
MTU_MAX_PROBES = 3

_BASE, _SEARCHING, _DONE = 0, 1, 2


class MtuSearch:
    """The search's state for one stream; the stream asks it what to pad and tells it what was
    acknowledged or lost.  :attr:`mtu` is the largest packet size proven on the path."""

    __slots__ = ("_limit", "_seq", "_size", "_state", "_tries", "_wanted", "mtu", "probes_sent")

    def __init__(self) -> None:
        self.mtu = MTU_BASE
        self.probes_sent = 0
        self.restart(MTU_BASE)

    @property
    def active(self) -> bool:
        """Still searching (or waiting for the first acknowledgement to start)."""
        return self._state != _DONE

    @property
    def probe_wanted(self) -> bool:
        """The next new DATA packet should be a probe."""
        return self._wanted

    def restart(self, limit: int | None) -> None:
        """Search again from 1200 bytes up to ``limit`` (None when unknown: 1500); at or below
        1200 there is nothing to search."""
        limit = MTU_MAX if limit is None or limit > MTU_MAX else limit
        self.mtu = self._size = MTU_BASE
        self._limit = limit
        self._state = _DONE if limit <= MTU_BASE else _BASE
        self._wanted = False
        self._seq = -1  # the padded packet in flight, -1 if none
        self._tries = 0  # probes at _size sent without success

    def acked_below(self, una: int) -> bool:
        """Every packet below ``una`` is acknowledged; True when :attr:`mtu` grew."""
        if self._state == _BASE:  # the first acknowledgement: the search starts
            self._state = _SEARCHING
            self._wanted = True
            return False
        if 0 <= self._seq < una:
            self._succeeded()
            return True
        return False

    def sacked(self, start: int, end: int) -> bool:
        """Packets ``start`` to ``end - 1`` are selectively acknowledged; True when :attr:`mtu` grew."""
        if start <= self._seq < end and self._state == _SEARCHING:
            self._succeeded()
            return True
        return False

    def padding(self, payload_size: int) -> int | None:
        """How many bytes to pad a new DATA packet of ``payload_size`` with to probe, or None
        when it cannot carry this probe (the next packet is tried)."""
        padding = self._size - MTU_OVERHEAD - payload_size
        return padding if 0 <= padding <= 255 else None

    def sent(self, seq: int) -> None:
        """The probe went out as packet ``seq``."""
        self._wanted = False
        self._seq = seq
        self._tries += 1
        self.probes_sent += 1

    def retransmitting(self, seq: int) -> None:
        """Packet ``seq`` goes out again (unpadded); if it was the probe, the probe was lost."""
        if seq != self._seq:
            return
        self._seq = -1
        if self._tries >= MTU_MAX_PROBES:
            self._state = _DONE  # the search ends at the current MTU
        else:
            self._wanted = True

    def _succeeded(self) -> None:
        self._seq = -1
        self._tries = 0
        self.mtu = self._size
        if self._size >= self._limit:
            self._state = _DONE
        else:
            self._size = min(self._size + MTU_STEP, self._limit)
            self._wanted = True
