"""Ending background asyncio tasks for good: cancelled, then awaited to their end.

A cancelled task has only been asked to stop: it runs on until its next await sees the cancellation,
and a client call in flight may swallow one. A component that closes its store right after stopping
its tasks must wait for them, or a task still running writes to a closed store ("no such table").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

__all__ = ["cancel_and_wait"]

log = logging.getLogger(__name__)


async def cancel_and_wait(
    tasks: Iterable[asyncio.Task[Any]], limit_s: float = 5.0
) -> list[asyncio.Task[Any]]:
    """Cancel `tasks` (again every 0.1 s, in case one swallowed it) until each has ended, for at most
    `limit_s` seconds of the event loop's clock. Returns the tasks still running then (normally none):
    the caller reports them. A task's own exception is logged here (retrieved), never raised."""
    loop = asyncio.get_running_loop()
    left = [t for t in tasks if not t.done()]
    deadline = loop.time() + limit_s
    while left:
        for t in left:
            t.cancel()
        await asyncio.wait(left, timeout=min(0.1, max(0.0, deadline - loop.time())))
        for t in left:
            if t.done() and not t.cancelled() and (exc := t.exception()) is not None:
                log.error("task %s ended with %r while being stopped", t.get_name(), exc)
        left = [t for t in left if not t.done()]
        if loop.time() >= deadline:
            break
    return left
