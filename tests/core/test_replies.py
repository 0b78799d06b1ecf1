"""Replies cut into pieces: where a piece ends, and the graph walk's pauses at its end."""

from __future__ import annotations

import pytest

from luigid.core import replies, shards
from luigid.core.rpc import Fragments
from luigid.scheduler import Scheduler

from .support import add


def test_an_empty_member_ends_the_piece_where_it_stands() -> None:
    members = [(b",", b'"a":1'), (), (b",", b'"b":2'), (b",", b'"c":3'), (), ()]
    assert list(replies.in_pieces(members)) == [b'"a":1', b'"b":2,"c":3', None]


def test_pieces_hold_at_most_fragment_size_members(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replies, "FRAGMENT_SIZE", 2)
    members = [(b",", f'"{n}":{n}'.encode()) for n in range(5)]
    assert list(replies.in_pieces(members)) == [b'"0":0,"1":1', b'"2":2,"3":3', b'"4":4']


def graph_pieces(s: Scheduler) -> list[bytes | None]:
    return [piece for piece in s.replies.graph() if not isinstance(piece, dict)]


def test_a_big_walk_frees_what_it_saw_a_shard_per_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Scheduler()
    for n in range(30):
        add(s, f"T_{n}", deps=[f"T_{n - 1}"] if n else [])
    whole = s.graph()
    assert not any(piece is None for piece in graph_pieces(s))  # a small walk frees at once
    monkeypatch.setattr(shards, "CLEAR_AT_ONCE", 10)
    pieces = graph_pieces(s)
    # the first pause ends the piece of members; each later one is a piece of its own
    assert pieces[-(shards.SHARDS - 1) :] == [None] * (shards.SHARDS - 1)
    assert all(pieces[: -(shards.SHARDS - 1)])
    assert Fragments(iter(pieces)).collect() == whole
