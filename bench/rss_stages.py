#!/usr/bin/env python3
"""Where an idle peer's RSS goes: VmRSS after importing each layer of ``run_node.py peer`` in turn.

One fresh interpreter imports the layers in the order the peer loads them and prints the RSS
after each (docs/performance.md, "Idle connected peer: RSS").  The running peer's own figure,
against Node's, is ``bench/all.py --figures rss``.  As there, our modules' bytecode is compiled
first (bench/bytecode.py, as ``pip install`` compiles); ``--from-source`` skips that and removes
nothing, so it measures from source only on a checkout without ``__pycache__``.

    .venv/bin/python bench/rss_stages.py [--from-source]
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LAYERS = (
    ("hashlib (OpenSSL's libcrypto and its digests)", ("hashlib",)),
    ("asyncio, without ssl as the command line loads it", ("asyncio",)),
    ("PyNaCl (libsodium, cffi)", ("nacl.bindings",)),
    ("noiseprotocol's handshake state machine", ("noise.noise_protocol", "noise.backends.noise_backend")),
    ("Thespian (with what simpleSystemBase loads)", ("thespian.actors", "thespian.system.simpleSystemBase")),
    ("argparse, json (the CLI)", ("argparse", "json")),
    ("our modules (protocol, actors, hyperswarm_hugin)", ("hyperswarm_hugin.cli", "hyperswarm_hugin.cli.peer")),
)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1000
    raise RuntimeError("no VmRSS")


def layers() -> None:
    """In a fresh interpreter (the child): import each layer and print the RSS after it.  asyncio
    loads as hyperswarm_hugin.cli.import_asyncio_without_ssl loads it (that module itself would
    bring argparse and the settings into the asyncio row)."""
    before = rss_mb()
    print(f"{'the interpreter':50} {before:5.1f} MB")
    for name, modules in LAYERS:
        for module in modules:
            if module == "asyncio":
                sys.modules["ssl"] = None  # type: ignore[assignment]
                importlib.import_module(module)
                del sys.modules["ssl"]
            else:
                importlib.import_module(module)
        now = rss_mb()
        print(f"{name:50} {now:5.1f} MB  +{now - before:.1f}")
        before = now
    print(f"{'cryptography loaded':50} {any(m.startswith('cryptography') for m in sys.modules)}")
    print(f"{'ssl loaded':50} {'ssl' in sys.modules}")


def main() -> None:
    if "--layers" in sys.argv:
        layers()
        return
    import subprocess  # not at the top: the child's first row is the bare interpreter

    if "--from-source" not in sys.argv:
        from bench.bytecode import compile_bytecode

        compile_bytecode()
    subprocess.run([sys.executable, __file__, "--layers"], check=True)


if __name__ == "__main__":
    main()
