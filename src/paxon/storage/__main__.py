"""``python -m paxon.storage --data-dir DIR [--json]``: the ``paxon check`` command."""

import sys

from paxon.storage.check import main

sys.exit(main(sys.argv[1:]))
