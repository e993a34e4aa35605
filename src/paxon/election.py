"""Leader election for clients: ``kv.election(name)`` (etcd's ``concurrency.Election``).

A candidate is a key ``_paxon/election/<name>/<lease id, 16 hex digits>``
put with the candidate's lease and its value (the proclamation); the leader
is the candidate with the lowest create revision, so candidates lead in the
order they campaigned. It is the recipe of the store's locks without the
store's help: no lock-delay, and values are public.

- ``campaign(value)`` enters (a kept lease of ``ttl`` seconds, then the key,
  put once: a txn that puts it only if it is not there) and returns once this
  candidate leads; ``Leadership.revision`` (its key's create revision) grows
  with every new leader, so it doubles as a fencing token.
- ``proclaim(value)`` changes the leader's value, guarded by its key's create
  revision: it raises ``NotElected`` if this candidate no longer leads.
- ``leader()`` is the current leader's ``Leadership`` (or None), read
  linearizably; ``observe()`` yields it each time it changes (a watch of the
  election's keys).
- ``resign()`` ends the candidacy (revokes its lease: its key goes and the
  next candidate leads). A candidate whose lease is lost (paused or cut off
  past ``ttl``) is out: ``lost`` turns true.

A candidate waits as a lock's waiter does (``paxon.locking``): for the one
just ahead of it to leave, with a held watch of that key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from paxon.errors import LeaseNotFound, NotElected
from paxon.kv.model import Compare, Get, GetOp, GetResult, KeyValue, PutOp, Txn, TxnResult
from paxon.locking import wait_for_the_one_ahead

if TYPE_CHECKING:
    from paxon.client import Client
    from paxon.client_lease import KeptLease

ELECTION_PREFIX: Final = "_paxon/election/"
WAIT_S: Final = 5.0
"""The longest one wait for the candidate ahead lasts before the leader is read again."""


@dataclass(frozen=True, slots=True)
class Leadership:
    """A leader: its candidate key, its value, and the key's create revision."""

    key: str
    value: bytes
    revision: int


class Election:
    def __init__(self, client: Client, name: str, *, ttl: float = 10.0) -> None:
        if not name or "/" in name:
            raise ValueError(f"an election name is non-empty and has no '/': {name!r}")
        self._client = client
        self.name = name
        self.ttl = ttl
        self._prefix = f"{ELECTION_PREFIX}{name}/"
        self._lease: KeptLease | None = None
        self._key: str | None = None
        self._revision = 0

    @property
    def lost(self) -> bool:
        """Whether this candidate's lease is lost (it may no longer lead)."""
        return self._lease is not None and self._lease.lost

    async def wait_lost(self) -> None:
        """Return once this candidate's lease is lost (never while it is kept)."""
        if self._lease is None:
            raise NotElected(f"election {self.name!r}: not a candidate")
        await self._lease.wait_lost()

    async def campaign(self, value: bytes | str) -> Leadership:
        """Stand with ``value``; return once this candidate leads."""
        client = self._client
        if self._lease is None:
            lease = client.lease(self.ttl)
            await lease.__aenter__()
            self._lease = lease
        lease = self._lease
        key = f"{self._prefix}{lease.id:016x}"
        data = value.encode() if isinstance(value, str) else value
        entered = await client.txn(
            Txn(
                (Compare(key, "create_revision", "==", 0),),
                (PutOp(key, data, lease.id),),
                (GetOp(key),),
            )
        )
        self._key = key
        self._revision = entered.revision if entered.succeeded else _created(entered)
        while True:
            if lease.lost:
                raise LeaseNotFound(f"election {self.name!r}: the candidate's lease was lost")
            leader = await self.leader()
            if leader is not None and leader.key == key:
                return leader
            await wait_for_the_one_ahead(self._client, self._prefix, self._revision, WAIT_S)

    async def proclaim(self, value: bytes | str) -> None:
        """Change the leader's value; ``NotElected`` unless this candidate leads."""
        if self._key is None or self._lease is None:
            raise NotElected(f"election {self.name!r}: not a candidate")
        leader = await self.leader()
        if leader is None or leader.key != self._key:
            raise NotElected(f"election {self.name!r}: another candidate leads")
        data = value.encode() if isinstance(value, str) else value
        guard = Compare(self._key, "create_revision", "==", self._revision)
        done = await self._client.txn(Txn((guard,), (PutOp(self._key, data, self._lease.id),)))
        if not done.succeeded:
            raise NotElected(f"election {self.name!r}: this candidate's key is gone")

    async def leader(self) -> Leadership | None:
        """The leader now (linearizable), or None if nobody stands."""
        candidates = await self._client.get_prefix(self._prefix)
        return _first(candidates)

    async def observe(self) -> AsyncIterator[Leadership | None]:
        """The leader now, then each time it changes (value or candidate): the
        candidates read once, then followed by a watch from that revision, so
        no change between two reads is missed."""
        now = await self._client._read(Get(self._prefix, True), False, GetResult)
        candidates = {kv.key: kv for kv in now.items}
        current = _first(list(candidates.values()))
        yield current
        watch = self._client.watch(self._prefix, prefix=True, from_revision=now.revision + 1)
        async for event in watch:
            if event.type == "put":
                candidates[event.kv.key] = event.kv
            else:
                candidates.pop(event.kv.key, None)
            leader = _first(list(candidates.values()))
            if leader != current:
                current = leader
                yield current

    async def resign(self) -> None:
        """Leave the election: the next candidate leads at once."""
        lease, self._lease = self._lease, None
        self._key = None
        if lease is not None:
            await lease.__aexit__(None, None, None)


def _first(candidates: list[KeyValue]) -> Leadership | None:
    if not candidates:
        return None
    first = min(candidates, key=lambda kv: kv.create_revision)
    return Leadership(first.key, first.value, first.create_revision)


def _created(failed: TxnResult) -> int:
    """The create revision of the candidate key that a failed entering txn read
    (the key was there: a retry of this campaign)."""
    response = failed.responses[0] if failed.responses else None
    if not isinstance(response, GetResult) or not response.items:
        raise NotElected("the candidate key vanished while entering; campaign again")
    return response.items[0].create_revision
