"""Replicated structures for the library: ``ReplDict``, ``ReplCounter``,
``ReplLockManager``, each a ``paxon.StateMachine`` with an async handle.

In the spirit of PySyncObj's batteries, on paxon's terms: run one of these as
a ``paxon.Node``'s state machine on every replica, then call it through a
handle over the node (``node.submit``/``node.query``) or over a ``paxon.Client``
connected to the cluster (``client.submit``/``client.query``). Writes go
through the log (applied once per command, whatever the retries); reads are
linearizable unless asked otherwise. Each structure has a runnable example in
``examples/`` and its limits written on its class.
"""

from paxon.repl.counter import CounterHandle, ReplCounter
from paxon.repl.dict import DictHandle, ReplDict
from paxon.repl.locks import LockHandle, LockManagerHandle, ReplLockManager

__all__ = [
    "CounterHandle",
    "DictHandle",
    "LockHandle",
    "LockManagerHandle",
    "ReplCounter",
    "ReplDict",
    "ReplLockManager",
]
