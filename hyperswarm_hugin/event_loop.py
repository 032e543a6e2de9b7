"""Which asyncio event loop our programs run on: uvloop when it is installed (``pip install
.[fast]``), the standard loop otherwise.

``HYPERSWARM_HUGIN_LOOP=asyncio`` forces the standard loop, ``=uvloop`` insists on uvloop (an
ImportError without it); unset or ``auto`` takes uvloop when it imports.  The library itself runs
on whatever loop its caller runs; this is for run_node.py and the benches.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's ``new_event_loop`` when chosen and importable, else None (the standard loop)."""
    choice = os.environ.get("HYPERSWARM_HUGIN_LOOP", "auto")
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the loop :func:`loop_factory` picks."""
    factory = loop_factory()
    log.debug("event loop: %s", "uvloop" if factory is not None else "asyncio")
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
