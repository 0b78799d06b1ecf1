"""The framed channel between the scheduler process and its fronts, over a real socketpair."""

from __future__ import annotations

import asyncio
import socket

from luigid.runtime.channel import Channel


def test_frames_arrive_whole_and_in_order_however_the_bytes_are_cut() -> None:
    async def run() -> tuple[list[tuple[int, int, bytes]], bool]:
        left, right = socket.socketpair()
        got: list[tuple[int, int, bytes]] = []
        closed = asyncio.Event()
        sender = Channel(left, lambda *frame: None, lambda: None)
        receiver = Channel(right, lambda kind, ident, payload: got.append((kind, ident, payload)), closed.set)
        big = bytes(range(256)) * 40_000  # 10 MB: many reads, a writer waiting for room
        for i in range(1, 2001):
            sender.send(1 + i % 7, i, b"" if i % 5 == 0 else str(i).encode() * (i % 50))
        sender.send(9, 4242, big)
        sender.send(3, 7, b"last")
        await sender.drained(10.0)
        while len(got) < 2002:
            await asyncio.sleep(0.01)
        sender.close()
        await asyncio.wait_for(closed.wait(), 5)
        return got, receiver.closed

    got, receiver_closed = asyncio.run(run())
    assert len(got) == 2002
    for i, (kind, ident, payload) in enumerate(got[:2000], start=1):
        assert (kind, ident) == (1 + i % 7, i)
        assert payload == (b"" if i % 5 == 0 else str(i).encode() * (i % 50))
    assert got[2000] == (9, 4242, bytes(range(256)) * 40_000)
    assert got[2001] == (3, 7, b"last")
    assert receiver_closed  # the other end closing is seen as the end of the channel


def test_frames_sent_in_one_loop_turn_leave_in_one_write() -> None:
    async def run() -> int:
        left, right = socket.socketpair()
        sender = Channel(left, lambda *frame: None, lambda: None)
        for i in range(100):
            sender.send(1, i, b"x" * 10)
        assert sender.backlog == 100 * (9 + 10)  # nothing written yet: the turn is not over
        await asyncio.sleep(0)
        await sender.drained(5.0)
        right.setblocking(False)
        data = right.recv(1 << 20)
        sender.close()
        right.close()
        return len(data)

    assert asyncio.run(run()) == 100 * 19
