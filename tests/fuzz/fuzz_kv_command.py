"""Coverage-guided fuzzing of the KV command and query decoders, and of
``KvStore.apply`` / ``KvStore.query`` on raw bytes.

Run: ``python tests/fuzz/fuzz_kv_command.py -max_total_time=60 CORPUS_DIR
tests/fuzz/seeds/kv_command``
(the contract is ``check_kv_command`` in ``targets.py``; ``make fuzz`` runs every target).
"""

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(_ROOT), str(_ROOT / "src")]  # this checkout, not an installed paxon

from tests.fuzz.runner import main  # noqa: E402

if __name__ == "__main__":
    main("kv_command")
