"""paxon: Multi-Paxos for Python.

The replicated-state-machine library and key-value service are built in
layers; see ``docs/architecture.md``. The pure protocol core lives in
``paxon.protocol`` and the deterministic simulator in ``paxon.sim``.
"""

from paxon.errors import Busy, NotLeader, PaxonError, ProtocolError

__version__ = "0.1.0"

__all__ = ["Busy", "NotLeader", "PaxonError", "ProtocolError", "__version__"]
