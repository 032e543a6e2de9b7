"""``python -m hyperswarm_hugin``: the ``hyperswarm-hugin`` command."""

import sys

from hyperswarm_hugin.cli import main

sys.exit(main(prog="python -m hyperswarm_hugin"))
