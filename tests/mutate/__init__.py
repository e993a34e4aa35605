"""The mutation score: how many plausible bugs the simulator finds on its own (issue 9, point 5).

cosmic-ray makes the mutants (one small change each: an operator, a number, a
condition) of ``protocol/`` and of the storage recovery code (``targets.py``
says which functions, and what is excluded and why). For each mutant, in a
copy of the tree, ``kill.py`` runs the simulator's seeds of a fixed budget
(``budget.py``) and stops at the first seed that fails: a violation, an
exception, or a hang. ``run.py`` shards the mutants over worker copies,
``report.py`` writes the score and the survivors to judge.

    make mutate          # every target, the default budget (hours; not in make test)
    make mutate-quick    # 40 sampled mutants
    python -m tests.mutate --help

The runner depends on the simulator only through ``paxon.sim.run_seed(seed,
config)`` and ``paxon.sim.SimConfig``.
"""
