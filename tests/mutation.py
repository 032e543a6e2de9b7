"""Mutating a well-formed datagram the way fuzzers do, shared by the fuzz tests."""

from __future__ import annotations

import random


def mutate(data: bytes, rng: random.Random) -> bytearray:
    """``data`` with a few bytes set, cut short, grown, or one bit flipped (an empty one stays valid)."""
    buf = bytearray(data)
    how = rng.randrange(4)
    if how == 0 and buf:
        for _ in range(rng.randint(1, 4)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
    elif how == 1:
        del buf[rng.randrange(len(buf) + 1):]
    elif how == 2:
        buf += rng.randbytes(rng.randint(1, 64))
    elif buf:
        buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
    return buf
