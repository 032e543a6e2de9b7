#!/usr/bin/env python3
"""The checkout's entry point: the same commands as the installed ``hyperswarm-hugin``."""

import sys

from hyperswarm_hugin.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="run_node.py"))
