"""``python -m paxon``: the ``paxon`` command."""

import sys

from paxon.cli import main

sys.exit(main())
