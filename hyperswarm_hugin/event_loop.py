"""Which asyncio event loop our programs run on: uvloop when it is installed (``pip install
.[fast]``), the standard loop otherwise.

``HYPERSWARM_HUGIN_LOOP=asyncio`` forces the standard loop, ``=uvloop`` insists on uvloop (an
ImportError without it); unset or ``auto`` takes uvloop when it imports.  The library itself runs
on whatever loop its caller runs; this is for run_node.py and the benches.

This module imports asyncio only when it runs a loop, so the command line can ask which loop it
will run before asyncio loads (hyperswarm_hugin/cli: the standard loop loads without ``ssl``).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable, Coroutine

log = logging.getLogger(__name__)

T = TypeVar("T")


def choice() -> str:
    """``HYPERSWARM_HUGIN_LOOP``: ``asyncio``, ``uvloop`` or ``auto`` (the default)."""
    return os.environ.get("HYPERSWARM_HUGIN_LOOP", "auto")


def standard_loop_chosen() -> bool:
    """Whether :func:`run` will run the standard loop (uvloop neither chosen nor installed),
    asked without importing asyncio or uvloop."""
    return choice() == "asyncio" or (choice() != "uvloop" and importlib.util.find_spec("uvloop") is None)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's ``new_event_loop`` when chosen and importable, else None (the standard loop)."""
    chosen = choice()
    if chosen == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if chosen == "uvloop":
            raise
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the loop :func:`loop_factory` picks."""
    import asyncio

    factory = loop_factory()
    log.debug("event loop: %s", "uvloop" if factory is not None else "asyncio")
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
