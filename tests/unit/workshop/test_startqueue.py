"""The fair start queue (services/workshop/startqueue.py)."""

from __future__ import annotations

import asyncio

import pytest

from workshop.startqueue import StartQueue


def test_first_come_first_served_with_places_in_line():
    async def scenario() -> list[str]:
        queue = StartQueue(2)
        order: list[str] = []

        async def participant(name: str) -> None:
            await queue.turn(name)
            order.append(name)

        await queue.turn("a")
        await queue.turn("b")
        waiting = [asyncio.create_task(participant(n)) for n in ("c", "d", "e")]
        await asyncio.sleep(0)
        assert [queue.position(n) for n in "abcde"] == [0, 0, 1, 2, 3]
        queue.release("a")
        await asyncio.sleep(0)
        assert order == ["c"] and queue.position("e") == 2
        queue.release("b")
        queue.release("c")
        await asyncio.gather(*waiting)
        assert queue.starting == 2 and queue.waiting == 0
        return order

    assert asyncio.run(scenario()) == ["c", "d", "e"]


def test_leaving_the_line_never_loses_a_turn():
    async def scenario() -> None:
        queue = StartQueue(1)
        await queue.turn("a")
        gone = asyncio.create_task(queue.turn("b"))
        stays = asyncio.create_task(queue.turn("c"))
        await asyncio.sleep(0)
        gone.cancel()  # b closed the browser tab
        queue.release("a")  # in the same moment a's server answered
        await asyncio.sleep(0)
        with pytest.raises(asyncio.CancelledError):
            await gone
        await asyncio.wait_for(stays, 1)
        assert queue.holds("c") and not queue.holds("b") and queue.waiting == 0

    asyncio.run(scenario())


def test_a_turn_taken_twice_is_one_turn_and_release_is_idempotent():
    async def scenario() -> None:
        queue = StartQueue(1)
        await queue.turn("a")
        await asyncio.wait_for(queue.turn("a"), 1)  # pre-spawn hook, then start
        queue.release("a")
        queue.release("a")
        queue.release("never-there")
        assert queue.starting == 0

    asyncio.run(scenario())
