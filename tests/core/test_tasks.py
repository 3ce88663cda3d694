"""`cancel_and_wait`: background tasks end for good before a component closes what they write to."""

from __future__ import annotations

import asyncio
import contextlib

from joe.core.tasks import cancel_and_wait


async def test_every_task_has_ended_when_it_returns() -> None:
    ended: list[str] = []

    async def sleeper() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            ended.append("sleeper")

    async def stubborn_once() -> None:
        # A client call in flight that swallows one cancellation and goes on to its next await.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)
        try:
            await asyncio.sleep(3600)
        finally:
            ended.append("stubborn_once")

    async def failing() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            raise RuntimeError("its own error: retrieved, not raised by cancel_and_wait")

    tasks = [asyncio.create_task(f()) for f in (sleeper, stubborn_once, failing)]
    await asyncio.sleep(0)  # each is at its first await
    assert await cancel_and_wait(tasks, limit_s=30) == []
    assert all(t.done() for t in tasks) and sorted(ended) == ["sleeper", "stubborn_once"]


async def test_a_task_that_will_not_end_is_returned_after_the_limit() -> None:
    release = asyncio.Event()

    async def deaf() -> None:
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(3600)

    task = asyncio.create_task(deaf())
    await asyncio.sleep(0)
    assert await cancel_and_wait([task], limit_s=0.3) == [task]
    release.set()
    assert await cancel_and_wait([task], limit_s=30) == []
    assert await cancel_and_wait([], limit_s=30) == []
