"""Coverage-guided fuzzing of snapshot restore: KvStore.restore and ReplicatedMachine.restore.

Run: ``python tests/fuzz/fuzz_snapshot.py -max_total_time=60 CORPUS_DIR tests/fuzz/seeds/snapshot``
(the contract is ``check_snapshot`` in ``targets.py``; ``make fuzz`` runs every target).
"""

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(_ROOT), str(_ROOT / "src")]  # this checkout, not an installed paxon

from tests.fuzz.runner import main  # noqa: E402

if __name__ == "__main__":
    main("snapshot")
