"""Real multi-process cluster tests: ``paxon serve`` processes on loopback, killed and paused.

Run with ``.venv/bin/pytest -m cluster tests/cluster -q`` (``-n 2`` works too: every
cluster picks its own free ports and keeps its files under the test's ``tmp_path``).
``harness.py`` starts and controls the processes; waiting is always polling a
condition with a deadline, never a fixed sleep.
"""
