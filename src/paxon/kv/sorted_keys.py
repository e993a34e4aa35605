"""Strings kept in order, for the store's prefix scans (``paxon.kv.store``)."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator
from typing import Final

BUCKET_KEYS: Final = 512


class SortedKeys:
    """Strings in order, as sorted buckets of at most ``2 * BUCKET_KEYS`` each.

    A single sorted list would move every later key on each insert (O(n));
    buckets keep an insert or removal at O(log n + BUCKET_KEYS) and a prefix
    scan at O(log n + k). ``_maxes[i]`` is the last key of ``_buckets[i]``; no
    bucket is empty.
    """

    __slots__ = ("_buckets", "_maxes")

    def __init__(self, keys_sorted: list[str] | None = None) -> None:
        keys = keys_sorted or []
        self._buckets = [keys[i : i + BUCKET_KEYS] for i in range(0, len(keys), BUCKET_KEYS)]
        self._maxes = [bucket[-1] for bucket in self._buckets]

    def __iter__(self) -> Iterator[str]:
        for bucket in self._buckets:
            yield from bucket

    def add(self, key: str) -> None:
        """Insert ``key``, which must not be present."""
        buckets, maxes = self._buckets, self._maxes
        if not maxes:
            buckets.append([key])
            maxes.append(key)
            return
        index = bisect_left(maxes, key)
        if index == len(maxes):
            index -= 1
            bucket = buckets[index]
            bucket.append(key)
            maxes[index] = key
        else:
            bucket = buckets[index]
            insort(bucket, key)
        if len(bucket) > 2 * BUCKET_KEYS:
            buckets[index : index + 1] = [bucket[:BUCKET_KEYS], bucket[BUCKET_KEYS:]]
            maxes[index : index + 1] = [bucket[BUCKET_KEYS - 1], bucket[-1]]

    def remove(self, key: str) -> None:
        """Remove ``key``, which must be present."""
        index = bisect_left(self._maxes, key)
        bucket = self._buckets[index]
        position = bisect_left(bucket, key)
        assert bucket[position] == key
        del bucket[position]
        if not bucket:
            del self._buckets[index]
            del self._maxes[index]
        elif position == len(bucket):
            self._maxes[index] = bucket[-1]

    def with_prefix(self, prefix: str) -> list[str]:
        """Every key starting with ``prefix``, in order."""
        found: list[str] = []
        buckets = self._buckets
        index = bisect_left(self._maxes, prefix)
        if index == len(buckets):
            return found
        position = bisect_left(buckets[index], prefix)
        while index < len(buckets):
            bucket = buckets[index]
            for each in range(position, len(bucket)):
                key = bucket[each]
                if not key.startswith(prefix):
                    return found
                found.append(key)
            index += 1
            position = 0
        return found

    def has_prefix(self, prefix: str) -> bool:
        index = bisect_left(self._maxes, prefix)
        if index == len(self._buckets):
            return False
        bucket = self._buckets[index]
        return bucket[bisect_left(bucket, prefix)].startswith(prefix)

    def check_invariants(self) -> None:
        assert len(self._buckets) == len(self._maxes)
        for bucket, last in zip(self._buckets, self._maxes, strict=True):
            assert 0 < len(bucket) <= 2 * BUCKET_KEYS
            assert bucket[-1] == last
