"""`MemoryStore`: the part of the `Store` interface a backtest's day loop uses, held in memory.

A backtest replays thousands of days through the same `PaperPortfolio`, stages and RiskGate as a run;
each day writes a few orders, fills, marks and an equity point, and reads the equity curve and the
recent closed trades back. Through SQLAlchemy each of those calls costs ~0.1 ms of statement building
(about 20 ms per simulated day); here they are dict and list operations. The accounting rules stay in
`PaperPortfolio` and the ledger — this class only keeps rows, with the store's contract for what the
day loop calls: the same return types (`PositionRow`, `PaperAccountRow`, `EquityPoint`, `Order`),
the same refusals (`StaleOrderError`, `DuplicatePositionError`, `NotFoundError`, `StoreError`), the same
ordering (`closed_positions` in closing order, `equity_curve` in time order), `set_state` JSON-only.
A method the day loop never calls is refused by name (`NotImplementedError`), never guessed.

Not durable and not atomic across an exception: a backtest that fails is rerun, nothing is lost.
The equality test (tests/backtest/test_backtest_equals_runs.py: a backtest = a loop of
`joe run --once` on the SQL store) is what proves the two stores give the same book.
"""

from __future__ import annotations

import bisect
import itertools
import json
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from joe.core.clock import utcnow
from joe.core.models import ZERO, Fill, Signal
from joe.core.order import Order
from joe.store.errors import DuplicatePositionError, NotFoundError, StaleOrderError, StoreError
from joe.store.records import EquityPoint, PaperAccountRow, PositionRow, RunRow, equity_marks_of


class MemoryStore:
    """In-memory rows for one backtest (see the module docstring for what it keeps and promises)."""

    url = "memory://backtest"

    def __init__(self) -> None:
        self._state: dict[str, str] = {}
        self._accounts: dict[str, PaperAccountRow] = {}
        self._positions: dict[int, PositionRow] = {}
        self._open_by_signal: dict[tuple[str, str, str], int] = {}
        self._last_by_signal: dict[tuple[str, str, str], int] = {}
        self._closed: list[tuple[datetime, int]] = []  # (closed_at, id), sorted
        self._orders: dict[str, Order] = {}
        self._fills: dict[str, tuple[Fill, str, str]] = {}
        self._equity: dict[str, list[EquityPoint]] = {}
        # Per mode, beside the curve: its times, and the running peak (index i: max equity of points
        # 0..i), so the RiskGate's daily read is two bisections instead of a pass over the curve.
        self._equity_ts: dict[str, list[datetime]] = {}
        self._equity_peak: dict[str, list[Decimal]] = {}
        self._equity_not_utc: set[str] = set()  # modes with a point not in UTC: dates read per point
        self._runs: dict[str, RunRow] = {}
        self._signals: dict[str, Signal] = {}

    def __getattr__(self, name: str) -> Any:
        raise NotImplementedError(
            f"the backtest's memory store has no {name}(): a stage the day loop calls now needs it "
            "(add it to joe.backtest.memstore with the Store's contract)"
        )

    # ------------------------------------------------------------------ transactions
    @contextmanager
    def atomic(self, *, durable: bool = True) -> Iterator[None]:
        """A no-op block: every write here is already in place when its call returns."""
        yield

    def close(self) -> None:
        return None

    # ------------------------------------------------------------------ state
    def get_state(self, key: str, default: Any = None) -> Any:
        raw = self._state.get(key)
        return default if raw is None else json.loads(raw)

    def set_state(self, key: str, value: Any) -> None:
        try:  # the store's rule: plain JSON only, so what get_state returns is what was stored
            self._state[key] = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise TypeError(f"state {key!r}: value is not plain JSON: {e}") from e

    def delete_state(self, key: str) -> bool:
        return self._state.pop(key, None) is not None

    # ------------------------------------------------------------------ paper account and equity
    def get_paper_account(self, name: str = "default") -> PaperAccountRow | None:
        return self._accounts.get(name)

    def save_paper_account(
        self,
        *,
        cash: Decimal,
        starting_cash: Decimal,
        realized_pnl: Decimal,
        currency: str = "USD",
        name: str = "default",
        now: datetime | None = None,
    ) -> PaperAccountRow:
        ts = now or utcnow()
        old = self._accounts.get(name)
        row = PaperAccountRow(
            name, currency, cash, starting_cash, realized_pnl, old.created_at if old else ts, ts
        )
        self._accounts[name] = row
        return row

    def record_equity(
        self, ts: datetime, mode: str, equity: Decimal, cash: Decimal, account: str = ""
    ) -> None:
        """`Store.record_equity`; a backtest has one account (the paper book), so `account` is not kept."""
        curve = self._equity.setdefault(mode, [])
        times = self._equity_ts.setdefault(mode, [])
        peaks = self._equity_peak.setdefault(mode, [])
        point = EquityPoint(ts, mode, equity, cash)
        if ts.utcoffset() != timedelta(0):
            self._equity_not_utc.add(mode)
        if not curve or curve[-1].ts <= ts:
            curve.append(point)
            times.append(ts)
            peaks.append(equity if not peaks or equity > peaks[-1] else peaks[-1])
        else:  # time order, ties in insertion order (the SQL store's ts, id); rare: rebuild the index
            curve.insert(bisect.bisect_right(times, ts), point)
            times[:] = [p.ts for p in curve]
            peaks[:] = list(itertools.accumulate((p.equity for p in curve), max))

    def equity_marks(
        self, mode: str, now: datetime, account: str = ""
    ) -> tuple[Decimal | None, Decimal | None]:
        """`Store.equity_marks` in O(log n): the points at or before `now` are a prefix of the curve;
        those of an earlier (UTC) day a shorter one. One account per backtest: `account` is not used."""
        curve = self._equity.get(mode, [])
        times = self._equity_ts.get(mode, [])
        n = bisect.bisect_right(times, now)
        if not n:
            return None, None
        if mode in self._equity_not_utc or now.utcoffset() != timedelta(0):
            return equity_marks_of(curve, now)  # not UTC: each point's own date, as the SQL store does
        midnight = datetime.combine(now.date(), time(0), tzinfo=now.tzinfo)
        k = bisect.bisect_left(times, midnight, 0, n)
        start = curve[k - 1].equity if k else curve[0].equity
        return start, self._equity_peak[mode][n - 1]

    def equity_curve(self, mode: str, since: datetime | None = None) -> list[EquityPoint]:
        curve = self._equity.get(mode, [])
        if since is None:
            return list(curve)
        return curve[bisect.bisect_left([p.ts for p in curve], since) :]

    # ------------------------------------------------------------------ runs and signals
    def start_run(
        self,
        run_id: str,
        mode: str,
        broker: str,
        source: str,
        as_of: datetime | date | None = None,
        started_at: datetime | None = None,
    ) -> RunRow:
        if run_id in self._runs:
            raise StoreError(f"run {run_id} already exists")
        when = (
            as_of
            if isinstance(as_of, datetime) or as_of is None
            else datetime.combine(as_of, datetime.min.time())
        )
        row = RunRow(run_id, started_at or utcnow(), mode, broker, source, "running", when)
        self._runs[run_id] = row
        return row

    def save_signals(self, run_id: str | None, signals: Iterable[Signal]) -> int:
        new = 0
        for s in signals:
            if s.signal_id not in self._signals:
                self._signals[s.signal_id] = s
                new += 1
        return new

    # ------------------------------------------------------------------ orders and fills
    def save_order(
        self, order: Order, *, broker: str, mode: str, pending_audit: Collection[str] = ()
    ) -> None:
        coid = order.client_order_id
        stored = self._orders.get(coid)
        if order.version == 0 and stored is not None:
            raise StaleOrderError(
                f"order {coid}: a new copy (version 0) cannot overwrite the stored order "
                f"(version {stored.version}); load the stored order and continue from it"
            )
        if order.version != 0 and (stored is None or stored.version != order.version):
            raise StaleOrderError(
                f"order {coid}: this copy is version {order.version} but the store has "
                f"{stored.version if stored is not None else 'no such order'}; another copy saved since"
            )
        if stored is not None and len(order.history) < len(stored.history):
            raise StaleOrderError(f"order {coid}: history is behind the stored one; load the stored order")
        order.version += 1
        self._orders[coid] = _snapshot(order)
        for f in order.fills.values():
            self._fills.setdefault(f.fill_id, (f, broker, mode))

    def load_order(self, client_order_id: str) -> Order | None:
        o = self._orders.get(client_order_id)
        return _snapshot(o) if o is not None else None

    def record_fill(self, fill: Fill, *, broker: str, mode: str) -> bool:
        if fill.client_order_id not in self._orders:
            raise StoreError(f"fill {fill.fill_id} refers to unknown order {fill.client_order_id}")
        if fill.fill_id in self._fills:
            return False
        self._fills[fill.fill_id] = (fill, broker, mode)
        return True

    def fills(self, client_order_id: str | None = None, mode: str | None = None) -> list[Fill]:
        rows = [
            f
            for f, _, m in self._fills.values()
            if (client_order_id is None or f.client_order_id == client_order_id)
            and (mode is None or m == mode)
        ]
        return sorted(rows, key=lambda f: (f.ts, f.fill_id))

    # ------------------------------------------------------------------ positions
    def open_position(
        self,
        *,
        mode: str,
        broker: str,
        symbol: str,
        quantity: Decimal,
        avg_price: Decimal,
        opened_at: datetime | None = None,
        signal_id: str | None = None,
        stop_loss: Decimal | None = None,
        take_profit: Decimal | None = None,
        trailing_distance: Decimal | None = None,
        high_water: Decimal | None = None,
        broker_position_id: str | None = None,
        fees: Decimal = ZERO,
    ) -> PositionRow:
        if quantity == 0:
            raise ValueError("a position's quantity must not be zero")
        key = (mode, broker, signal_id or "")
        if signal_id is not None and key in self._open_by_signal:
            raise DuplicatePositionError(
                f"an open {mode} position on {broker} already exists for signal {signal_id}"
            )
        now = utcnow()
        pid = len(self._positions) + 1
        row = PositionRow(
            pid,
            mode,
            broker,
            symbol,
            quantity,
            avg_price,
            "open",
            opened_at or now,
            now,
            ZERO,
            fees,
            stop_loss,
            take_profit,
            trailing_distance,
            high_water if high_water is not None else avg_price,
            signal_id,
            broker_position_id,
        )
        self._positions[pid] = row
        if signal_id is not None:
            self._open_by_signal[key] = pid
            self._last_by_signal[key] = pid
        return row

    def _open_row(self, position_id: int) -> PositionRow:
        row = self._positions.get(position_id)
        if row is None:
            raise NotFoundError(f"position {position_id} does not exist")
        if row.status != "open":
            raise StoreError(f"position {position_id} is already {row.status}")
        return row

    def update_position(self, position_id: int, **changes: Any) -> PositionRow:
        row = self._open_row(position_id)
        if changes.get("quantity") == 0:
            raise ValueError("use close_position to take a position to zero")
        new = replace(row, **{k: v for k, v in changes.items() if v is not None}, updated_at=utcnow())
        self._positions[position_id] = new
        return new

    def close_position(
        self,
        position_id: int,
        exit_price: Decimal,
        exit_reason: str,
        realized_pnl: Decimal,
        closed_at: datetime | None = None,
    ) -> PositionRow:
        row = self._open_row(position_id)
        now = utcnow()
        new = replace(
            row,
            status="closed",
            exit_price=exit_price,
            exit_reason=exit_reason,
            realized_pnl=realized_pnl,
            closed_at=closed_at or now,
            updated_at=now,
        )
        self._positions[position_id] = new
        self._open_by_signal.pop((row.mode, row.broker, row.signal_id or ""), None)
        assert new.closed_at is not None
        bisect.insort(self._closed, (new.closed_at, position_id))
        return new

    def open_positions(self, mode: str, broker: str | None = None) -> list[PositionRow]:
        rows = [
            r
            for r in self._positions.values()
            if r.status == "open" and r.mode == mode and (broker is None or r.broker == broker)
        ]
        return sorted(rows, key=lambda r: (r.opened_at, r.id))

    def closed_positions(
        self, mode: str, broker: str | None = None, since: datetime | None = None, limit: int | None = None
    ) -> list[PositionRow]:
        lo = 0 if since is None else bisect.bisect_left(self._closed, (since, 0))
        rows = [self._positions[pid] for _, pid in self._closed[lo:]]
        rows = [r for r in rows if r.mode == mode and (broker is None or r.broker == broker)]
        return rows if limit is None else rows[max(0, len(rows) - limit) :]

    def position_for_signal(self, mode: str, broker: str, signal_id: str) -> PositionRow | None:
        key = (mode, broker, signal_id)
        pid = self._open_by_signal.get(key) or self._last_by_signal.get(key)
        return self._positions[pid] if pid is not None else None


def _snapshot(order: Order) -> Order:
    """A copy the caller's later mutations cannot reach (intent, fills and transitions are never changed
    in place; the containers are copied). A deep copy costs ~10x more per order."""
    return replace(
        order, fills=dict(order.fills), history=list(order.history), fill_revisions=dict(order.fill_revisions)
    )
