"""The Capital.com simulator's idle clock, moved by the test instead of the wall clock.

The simulator closes a WebSocket (`joe.simulators.capital.stream`) or expires a session
(`joe.simulators.capital.server`, through its gate) that was idle longer than its limit, measured with
``time.monotonic()``. Tests that show "pings keep it open past the limit" used a 0.3 s limit, pings every
0.1 s and a 1 s wait: a pause of 0.3 s of the test process (a loaded machine) let the limit run out
between two pings, and the socket was dropped or the session expired (shown with a 0.5 s pause). Here
the simulator's clock moves only when the test moves it, in steps shorter than the limit, each once the
client has pinged at the clock's present reading (the first included): past the limit in all, never idle
past it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import ModuleType, SimpleNamespace

import pytest


class IdleClock:
    """``time.monotonic()`` of `modules` (the simulator's), standing still until `run_past` moves it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *modules: ModuleType) -> None:
        self.now = time.monotonic()
        for module in modules:
            monkeypatch.setattr(module, "time", SimpleNamespace(monotonic=lambda: self.now))

    async def run_past(self, limit_s: float, pinged: Callable[[], bool], timeout: float = 120.0) -> None:
        """Move on by more than 3 × `limit_s`, in steps of 0.8 × `limit_s`, each once `pinged()` is true
        (the client pinged at the present reading; `pinged` reads `self.now`), the first step too."""
        loop = asyncio.get_running_loop()
        moved = 0.0
        while True:
            end = loop.time() + timeout
            while not pinged():
                assert loop.time() < end, f"no ping in {timeout} s"
                await asyncio.sleep(0.005)
            if moved > 3 * limit_s:
                return
            self.now += 0.8 * limit_s
            moved += 0.8 * limit_s
