"""Many datagrams per system call: Linux ``recvmmsg(2)`` through ctypes.

Python's socket module reads one datagram per call.  A Node (libudx) receiver acknowledges every
DATA packet with its own datagram, so a Python sender streaming to it reads ~100,000 ACKs a
second; one ``recvmsg`` each was a fifth of the sender's time.  :class:`MultiReceiver` reads
every datagram waiting (up to ``slots``) with one ``recvmmsg``, each into its own 64 KiB slot of
an anonymous mapping (pages are only touched where datagrams land, so an idle socket costs no
memory), with its source address and its UDP GRO segment size (a run of equal datagrams from a
segmenting sender arrives as one buffer, cut here as in :class:`~hyperswarm_hugin.actors.udp.UdpEndpoint`).

Only on little-endian Linux (the lengths are read as 32-bit words straight from the ``mmsghdr``
array); :func:`available` says whether it can be used.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import mmap
import socket
import struct
import sys
from typing import Any

from hyperswarm_hugin.protocol.encoding import Address

log = logging.getLogger(__name__)

SLOT = 65536
"""Bytes per datagram slot: a UDP datagram over IPv4, or a GRO run, fits (never truncated)."""
MSG_DONTWAIT = 0x40
SOL_UDP = 17
UDP_GRO = 104


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint)]


MMSG_SIZE = ctypes.sizeof(_Mmsghdr)
NAME_SIZE = 16  # struct sockaddr_in
CONTROL_SIZE = socket.CMSG_SPACE(4) if hasattr(socket, "CMSG_SPACE") else 0
CMSG_HEADER = socket.CMSG_LEN(0) if hasattr(socket, "CMSG_LEN") else 0
_SIZE_T = ctypes.sizeof(ctypes.c_size_t)
_CMSG = struct.Struct(f"<{_SIZE_T}xii{max(0, CMSG_HEADER - _SIZE_T - 8)}xi")
"""A control message: its length (skipped), level, type, padding to CMSG_LEN(0), an int."""

_recvmmsg: Any = None
if sys.platform == "linux" and sys.byteorder == "little" and MMSG_SIZE % 4 == 0 and CONTROL_SIZE:
    try:
        # PyDLL: the call never blocks (MSG_DONTWAIT), so the GIL is kept (no release and
        # re-acquire per call).
        _recvmmsg = ctypes.PyDLL(None, use_errno=True).recvmmsg
        _recvmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
        _recvmmsg.restype = ctypes.c_int
    except (OSError, AttributeError):
        _recvmmsg = None


def available() -> bool:
    return _recvmmsg is not None


class MultiReceiver:
    """Reads the datagrams waiting on one IPv4 UDP socket, ``slots`` per system call."""

    def __init__(self, slots: int = 32) -> None:
        if _recvmmsg is None:
            raise OSError("recvmmsg is not available here")
        self.slots = slots
        self.memory = mmap.mmap(-1, slots * SLOT)
        self._headers = bytearray(slots * MMSG_SIZE)
        self._names = bytearray(slots * NAME_SIZE)
        self._control = bytearray(slots * CONTROL_SIZE)
        memory = ctypes.c_char.from_buffer(self.memory)
        iovecs = (_Iovec * slots)()
        self._keep = (memory, iovecs)  # the kernel writes through their addresses
        base = ctypes.addressof(memory)
        names = ctypes.addressof(ctypes.c_char.from_buffer(self._names))
        control = ctypes.addressof(ctypes.c_char.from_buffer(self._control))
        headers = (_Mmsghdr * slots).from_buffer(self._headers)
        for i in range(slots):
            iovec = iovecs[i]
            iovec.iov_base = base + i * SLOT
            iovec.iov_len = SLOT
            hdr = headers[i].msg_hdr
            hdr.msg_name = names + i * NAME_SIZE
            hdr.msg_namelen = NAME_SIZE
            hdr.msg_iov = ctypes.addressof(iovec)
            hdr.msg_iovlen = 1
            hdr.msg_control = control + i * CONTROL_SIZE
            hdr.msg_controllen = CONTROL_SIZE
        self._pristine = bytes(self._headers)  # the kernel rewrites namelen and controllen
        self._pointer = ctypes.addressof(ctypes.c_char.from_buffer(self._headers))
        self._words = memoryview(self._headers).cast("I")
        self._stride = MMSG_SIZE // 4
        self._len_word = _Mmsghdr.msg_len.offset // 4
        self._ctl_word = (_Mmsghdr.msg_hdr.offset + _Msghdr.msg_controllen.offset) // 4
        self._sources: dict[bytes, Address] = {}

    def read(self, fd: int, received: list[tuple[bytes, Address]], limit: int) -> int:
        """Append to ``received`` the datagrams waiting on ``fd``, about ``limit`` at most (whole
        calls of ``slots``, at least one); stops when a call finds fewer than ``slots`` waiting.
        Returns how many receive errors were read and skipped."""
        append = received.append
        memory, names, control = self.memory, self._names, self._control
        words, stride = self._words, self._stride
        sources = self._sources
        calls = max(1, limit // self.slots)
        errors = 0
        for _ in range(calls):
            count = _recvmmsg(fd, self._pointer, self.slots, MSG_DONTWAIT, None)
            if count <= 0:
                if count < 0:
                    code = ctypes.get_errno()
                    if code not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                        # e.g. ICMP port unreachable reported on this read: it is consumed, go on
                        errors += 1
                        log.debug("udp receive error: %s", errno.errorcode.get(code, code))
                        continue
                return errors
            end = count * stride
            lengths = words[self._len_word:end:stride].tolist()
            controls = words[self._ctl_word:end:stride].tolist()
            for i in range(count):
                length = lengths[i]
                offset = i * SLOT
                at = i * NAME_SIZE + 2
                key = bytes(names[at:at + 6])
                source = sources.get(key)
                if source is None:
                    if len(sources) >= 1024:
                        sources.clear()
                    source = sources[key] = (socket.inet_ntoa(key[2:]), int.from_bytes(key[:2], "big"))
                if controls[i]:
                    at = i * CONTROL_SIZE
                    level, kind, size = _CMSG.unpack_from(control, at)
                    if level == SOL_UDP and kind == UDP_GRO and 0 < size < length:
                        for start in range(offset, offset + length, size):
                            append((memory[start:min(start + size, offset + length)], source))
                        continue
                append((memory[offset:offset + length], source))
            # restore the name and control lengths the kernel rewrote
            self._headers[:end * 4] = self._pristine[:end * 4]
            if count < self.slots:
                break
        return errors
