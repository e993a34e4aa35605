"""What a node believes of its own removal when its log cannot show it.

A node removed while it was down or cut off comes back holding itself a voter
and stands. A member that remembers the removal refuses its probe and sends a
``RemovedNotice``: "you are in no configuration from ``epoch`` on". When the
members still hold the slots of the change, the node learns the change itself
(``Replica._tell_the_removed``); once they have compacted past it, the notice is
all it gets, so the node needs a rule for when to believe it.

Rule: a node believes it was removed once a majority of the voters of the
newest configuration it holds have each said so with an epoch above that
configuration's. Why each part:
- Above the newest epoch it holds: a member's memory of a removal may be older
  than a change the node knows (it was added back since); such a notice is
  stale and counts for nothing.
- From the voters it holds, a majority of them: the node cannot check the
  claim against a log, so one member's word (or one forged message) does not
  end its candidacy. A member never claims a removal that was not chosen:
  it remembers only removals it applied.
- Believing it only stops the node from standing (``Replica._may_stand``). It
  still answers and still learns: a change it learns later that names it again
  (the newest epoch it holds passes the notices') ends the belief.

Bound: one notice kept per voter of the newest configuration (at most
``MEMBERS_MAX``); the rest are dropped as they come.
"""

from __future__ import annotations

from paxon.protocol.membership import Configuration
from paxon.protocol.types import NodeId


class RemovalNotices:
    """The removal notices a node holds; see the module docstring."""

    def __init__(self) -> None:
        self._epochs: dict[NodeId, int] = {}  # teller -> the epoch it named

    def take(self, teller: NodeId, epoch: int, newest: Configuration, own: NodeId) -> bool:
        """Keep ``teller``'s notice; False (kept nothing) when it is stale or not
        from another voter of ``newest``."""
        if epoch <= newest.epoch or teller == own or teller not in newest.voters:
            return False
        for gone in [t for t in self._epochs if t not in newest.voters]:
            del self._epochs[gone]
        self._epochs[teller] = epoch
        return True

    def removed_at(self, newest: Configuration) -> int | None:
        """The epoch a majority of ``newest``'s voters said removed this node, the
        lowest they agree on; None while they do not."""
        told = sorted(
            (
                e
                for teller, e in self._epochs.items()
                if teller in newest.voters and e > newest.epoch
            ),
            reverse=True,
        )
        if len(told) < newest.quorum:
            return None
        return told[newest.quorum - 1]
