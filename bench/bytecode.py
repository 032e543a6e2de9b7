"""Our modules' bytecode compiled into the checkout's ``__pycache__``, as ``pip install`` leaves it.

``pip install`` compiles a package's modules into site-packages; a checkout run with
PYTHONDONTWRITEBYTECODE=1 (this machine's environment sets it) never gets them, so each start
compiles every module from source and keeps the compiler's freed memory in its heap.  The
benchmarks that measure a process's memory compile first, so they measure the peer as installed.
PYTHONDONTWRITEBYTECODE stops an interpreter writing bytecode, not reading it.
"""

from __future__ import annotations

import compileall
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# hyperswarm_hugin/{protocol,actors,config} are symlinks, which compileall does not follow; the
# import system finds their bytecode in protocol/__pycache__ etc. through the same links.
PACKAGES = ("hyperswarm_hugin", "protocol", "actors", "config")


def compile_bytecode() -> None:
    """Compile (or refresh) our modules' bytecode; raise if one does not compile."""
    for package in PACKAGES:
        if not compileall.compile_dir(ROOT / package, quiet=1):
            raise RuntimeError(f"compileall failed in {package}")
