"""Small state: key-value (trading state, kill switch), the paper account, the equity curve and the
paper track record."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import RowMapping, func, select

from joe.config.mode import TrackRecord  # one definition: the live gate reads what the store counts
from joe.core.clock import ensure_utc, utcnow
from joe.store._base import StoreBase, check_mode, upsert
from joe.store.records import EquityPoint, PaperAccountRow
from joe.store.schema import equity_history as equity_t
from joe.store.schema import fills as fills_t
from joe.store.schema import kv_state as kv_t
from joe.store.schema import paper_account as account_t
from joe.store.schema import positions as pos_t


def _account(r: RowMapping) -> PaperAccountRow:
    return PaperAccountRow(**{f: r[f] for f in PaperAccountRow.__dataclass_fields__})


class StateRepository(StoreBase):
    """Key-value state, the paper account, equity history and the paper track record."""

    def get_state(self, key: str, default: Any = None) -> Any:
        """The stored value for `key`, or `default` if it was never set."""
        with self._read() as conn:
            row = conn.execute(select(kv_t.c.value).where(kv_t.c.key == key)).first()
        return default if row is None else row[0]

    def set_state(self, key: str, value: Any) -> None:
        """Store a JSON value under `key` (committed before returning).

        Only plain JSON values are accepted (dict, list, str, int, float, bool, None), so what
        `get_state` returns is exactly what was stored; anything else raises `TypeError`.
        """
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise TypeError(f"state {key!r}: value is not plain JSON: {e}") from e
        with self._write() as conn:
            upsert(conn, kv_t, {"key": key, "value": value, "updated_at": utcnow()}, ["key"])

    def delete_state(self, key: str) -> bool:
        """Remove a key; True if it existed."""
        with self._write() as conn:
            return conn.execute(kv_t.delete().where(kv_t.c.key == key)).rowcount > 0

    def get_paper_account(self, name: str = "default") -> PaperAccountRow | None:
        """The paper account, or None if it was never created."""
        with self._read() as conn:
            r = conn.execute(select(account_t).where(account_t.c.name == name)).mappings().first()
        return _account(r) if r else None

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
        """Create or update the paper account (its `created_at` is kept on update)."""
        ts = now or utcnow()
        values = {
            "name": name,
            "currency": currency,
            "cash": cash,
            "starting_cash": starting_cash,
            "realized_pnl": realized_pnl,
            "created_at": ts,
            "updated_at": ts,
        }
        with self._write() as conn:
            upsert(conn, account_t, values, ["name"], keep=["created_at"])
            return _account(conn.execute(select(account_t).where(account_t.c.name == name)).mappings().one())

    def record_equity(self, ts: datetime, mode: str, equity: Decimal, cash: Decimal) -> None:
        """Append one point to the equity curve of `mode`."""
        with self._write() as conn:
            conn.execute(equity_t.insert().values(ts=ts, mode=check_mode(mode), equity=equity, cash=cash))

    def equity_curve(self, mode: str, since: datetime | None = None) -> list[EquityPoint]:
        """The equity curve of `mode` in time order."""
        q = select(equity_t).where(equity_t.c.mode == check_mode(mode))
        if since is not None:
            q = q.where(equity_t.c.ts >= since)
        with self._read() as conn:
            rows = conn.execute(q.order_by(equity_t.c.ts, equity_t.c.id)).mappings().all()
        return [EquityPoint(ts=r["ts"], mode=r["mode"], equity=r["equity"], cash=r["cash"]) for r in rows]

    def paper_track_record(self, now: datetime | None = None) -> TrackRecord:
        """Paper days (whole days since the first paper fill or position) and closed paper trades."""
        now = ensure_utc(now) if now is not None else utcnow()
        with self._read() as conn:
            first_fill = conn.execute(
                select(func.min(fills_t.c.ts)).where(fills_t.c.mode == "paper")
            ).scalar()
            first_open = conn.execute(
                select(func.min(pos_t.c.opened_at)).where(pos_t.c.mode == "paper")
            ).scalar()
            closed = conn.execute(
                select(func.count())
                .select_from(pos_t)
                .where(pos_t.c.mode == "paper", pos_t.c.status == "closed")
            ).scalar_one()
        # func.min bypasses the column type's result processing on some backends; normalise here.
        starts = [_as_utc(v) for v in (first_fill, first_open) if v is not None]
        days = max(0, (now - min(starts)).days) if starts else 0
        return TrackRecord(paper_days=days, closed_paper_trades=int(closed))


def _as_utc(v: Any) -> datetime:
    if isinstance(v, str):
        v = datetime.fromisoformat(v)
    return ensure_utc(v)
