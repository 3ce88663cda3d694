"""`EventTally`: the order-event counters and latency histograms of `/metrics`, kept up to date
incrementally — each scrape reads only the `order_events` rows added since the last one.

Rows are read by `order_events.id` above a cursor. A transaction that took its id before another but
committed after it (PostgreSQL sequences) would be skipped by a plain cursor, so every read goes back
`EVENT_OVERLAP` ids and ignores the ids already counted (a set of at most that many). Per order, only
what a later latency needs is kept (its submit time, whether ack / fill were seen), and only until the
order is terminal: memory follows the working orders, not the history. Histograms hold bucket counts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

#: Order latency buckets, seconds: a market order acks in tens of ms; a limit may rest for hours.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
EVENT_OVERLAP = 1000  # ids re-read below the cursor each scrape
BATCH = 50_000  # rows read per query (a first scrape of a long history reads in several)
TERMINAL = {"FILLED", "CANCELLED", "REJECTED", "EXPIRED"}


@dataclass
class _Pending:
    submitted: datetime | None = None
    acked: bool = False
    filled: bool = False


@dataclass
class EventTally:
    """Counters per (mode, broker); latency per (broker, stage) as (bucket counts, sum, count)."""

    rejects: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    unknown: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    reconciled: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    latency: dict[tuple[str, str], tuple[list[int], float, int]] = field(default_factory=dict)
    cursor: int = 0  # the highest order_events.id counted
    rows_read: int = 0  # rows fetched in all (tests: a scrape with nothing new reads only the overlap)
    _seen: set[int] = field(default_factory=set)  # counted ids within the overlap window
    _pending: dict[str, _Pending] = field(default_factory=dict)

    def update(self, rows: Callable[[Any], list[Any]], now: datetime | None = None) -> None:
        """Read and count the rows added since the last call (`rows(query)` runs a query)."""
        from joe.store.schema import order_events, orders

        while True:
            low = max(0, self.cursor - EVENT_OVERLAP)
            q = (
                select(
                    order_events.c.id,
                    orders.c.client_order_id,
                    orders.c.mode,
                    orders.c.broker,
                    order_events.c.ts,
                    order_events.c.to_state,
                    order_events.c.from_reconciliation,
                )
                .join(orders, orders.c.client_order_id == order_events.c.client_order_id)
                .where(order_events.c.id > low)
                .order_by(order_events.c.id)
                .limit(BATCH)
            )
            got = rows(q)
            self.rows_read += len(got)
            fresh = [r for r in got if r[0] not in self._seen]
            for r in fresh:
                self._count(*r)
            if got:
                self.cursor = max(self.cursor, int(got[-1][0]))
            floor = self.cursor - EVENT_OVERLAP
            self._seen = {i for i in self._seen if i > floor}
            if len(got) < BATCH or not fresh:
                return

    def _count(
        self, row_id: int, coid: str, mode: str, broker: str, ts: datetime, to_state: Any, from_rec: Any
    ) -> None:
        self._seen.add(int(row_id))
        key = (mode, broker)
        to = str(to_state).upper()
        if from_rec:
            self.reconciled[key] += 1
        if to == "REJECTED":
            self.rejects[key] += 1
        elif to == "UNKNOWN":
            self.unknown[key] += 1
        p = self._pending.get(coid)
        if to == "SUBMITTING":
            if p is None:
                p = self._pending[coid] = _Pending()
            if p.submitted is None:
                p.submitted = ts
        elif p is not None and p.submitted is not None:
            if to == "ACCEPTED" and not p.acked:
                p.acked = True
                self._observe(broker, "ack", (ts - p.submitted).total_seconds())
            if to in ("PARTIALLY_FILLED", "FILLED") and not p.filled:
                p.filled = True
                self._observe(broker, "fill", (ts - p.submitted).total_seconds())
        if to in TERMINAL:
            self._pending.pop(coid, None)

    def _observe(self, broker: str, stage: str, seconds: float) -> None:
        counts, total, n = self.latency.get((broker, stage)) or ([0] * len(LATENCY_BUCKETS), 0.0, 0)
        for i, b in enumerate(LATENCY_BUCKETS):
            if seconds <= b:
                counts[i] += 1
        self.latency[(broker, stage)] = (counts, total + seconds, n + 1)

    @property
    def pending_orders(self) -> int:
        return len(self._pending)
