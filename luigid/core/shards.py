"""A set of ids that may hold every task, spread over many small sets.

A set grows its table in one step, rehashing every member: 10-20 ms at a million ids (about
100 ms on a busy daemon), inside whichever step of a long job made it grow. Spread over
``SHARDS`` sets by hash, each grows a 64th of that at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

SHARDS = 64
#: ``clear_stepwise`` frees a set this small at once (about 2 ms), without pausing
CLEAR_AT_ONCE = 100_000


class ShardedSet:
    """The few set operations the long jobs need (add, discard, membership, size, iteration),
    with no one step that regrows a table of every member."""

    __slots__ = ("_shards", "_size")

    def __init__(self, members: Iterable[str] = ()) -> None:
        self._shards: list[set[str]] = [set() for _ in range(SHARDS)]
        self._size = 0
        for member in members:
            self.add(member)

    def add(self, member: str) -> bool:
        """Add ``member``; False if it was there already."""
        shard = self._shards[hash(member) % SHARDS]
        if member in shard:
            return False
        shard.add(member)
        self._size += 1
        return True

    def discard(self, member: str) -> bool:
        """Take ``member`` out; False if it was not there."""
        shard = self._shards[hash(member) % SHARDS]
        if member not in shard:
            return False
        shard.remove(member)
        self._size -= 1
        return True

    def clear_stepwise(self) -> Iterator[None]:
        """Empty the set a shard at a time, yielding after each: freeing a million members
        in one step is as long a step as growing them was. Up to ``CLEAR_AT_ONCE`` members
        in one step, yielding nothing (a small walk's reply gets no extra pieces)."""
        if self._size <= CLEAR_AT_ONCE:
            for shard in self._shards:
                shard.clear()
            self._size = 0
            return
        for shard in self._shards:
            self._size -= len(shard)
            shard.clear()
            yield

    def __contains__(self, member: object) -> bool:
        return member in self._shards[hash(member) % SHARDS]

    def __iter__(self) -> Iterator[str]:
        return (member for shard in self._shards for member in shard)

    def __len__(self) -> int:
        return self._size

    def __getstate__(self) -> list[str]:
        return list(self)

    def __setstate__(self, members: list[str]) -> None:
        self.__init__(members)  # type: ignore[misc]
