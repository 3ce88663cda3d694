"""Small helpers shared by the IBKR tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from joe.brokers.ibkr import IBKRExecutor
from joe.core.events import NullAudit


def audit_types(audit: NullAudit) -> list[str]:
    return [r[0] for r in audit.records]


async def wait_for(pred: Callable[[], bool], timeout: float = 3.0, what: str = "condition") -> None:
    """Poll `pred` on the event loop (no wall-clock assertion: a timeout only means 'never happened')."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def drain(ex: IBKRExecutor) -> list[Any]:
    """All order events queued so far."""
    out = []
    while not ex.ledger.queue.empty():
        out.append(ex.ledger.queue.get_nowait())
    return out
