"""Small builders for the execution tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from joe.core.models import Side
from joe.execution.protection import ExitRequest, StopModify, TrailingStop, WatchedPosition
from joe.execution.quotes import InstrumentIndex, QuoteBatch

S = 1_000_000_000  # ns per second


class Requests:
    """A fake `ExitRequester` (the OrderManager's side) that records what it was asked."""

    def __init__(self) -> None:
        self.exits: list[ExitRequest] = []
        self.modifies: list[StopModify] = []

    def request_exit(self, request: ExitRequest) -> None:
        self.exits.append(request)

    def request_stop_modify(self, request: StopModify) -> None:
        self.modifies.append(request)


def pos(
    pid: str,
    symbol: str = "AAA",
    side: Side = Side.BUY,
    *,
    qty: str = "10",
    entry: str = "100",
    stop: str | None = "95",
    tp: str | None = None,
    trail: tuple[str, str] | None = None,
    exit_at: datetime | None = None,
) -> WatchedPosition:
    return WatchedPosition(
        pid, symbol, side, Decimal(qty), Decimal(entry),
        stop=Decimal(stop) if stop is not None else None,
        take_profit=Decimal(tp) if tp is not None else None,
        trailing=TrailingStop(Decimal(trail[0]), Decimal(trail[1])) if trail else None,
        exit_at=exit_at,
    )  # fmt: skip


def batch(
    index: InstrumentIndex, quotes: Sequence[tuple[str, float, int]], spread: float = 0.0
) -> QuoteBatch:
    """Quotes as (symbol, mid, ts in seconds)."""
    return QuoteBatch.of(
        [index.id(s) for s, _, _ in quotes],
        [t * S for _, _, t in quotes],
        [m - spread / 2 for _, m, _ in quotes],
        [m + spread / 2 for _, m, _ in quotes],
    )
