"""Small state: key-value (trading state, kill switch), the paper account, the equity curve and the
paper track record."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import RowMapping, insert, or_, select, update

from joe.config.mode import TrackRecord  # one definition: the live gate reads what the store counts
from joe.core.clock import ensure_utc, utcnow
from joe.store._base import StoreBase, check_mode, upsert
from joe.store.records import EquityPoint, PaperAccountRow, equity_marks_of
from joe.store.schema import equity_history as equity_t
from joe.store.schema import kv_state as kv_t
from joe.store.schema import paper_account as account_t
from joe.store.schema import pipeline_runs as runs_t
from joe.store.schema import positions as pos_t
from joe.store.schema import signals as sig_t

# A run's as-of may be up to this many calendar days before the day it ran and still be "its own
# trading day" (Friday's bar on a Monday morning before the close, or after a holiday).
ON_THE_DAY_SLACK_DAYS = 4


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

    def advance_state(self, key: str, value: dict[str, Any], *, durable: bool = True) -> bool:
        """Store `value` (a JSON object with an integer ``seq``) under `key` unless the stored value
        has a ``seq`` at least as high (several writers may race; a stored value without a readable
        ``seq`` is replaced). One conditional UPDATE in the common case, so a caller on a hot path
        (the audit anchor, every record) pays one statement, not a read and a write. Joins the
        caller's `atomic()` block when there is one. True if the value was stored."""
        seq = int(value["seq"])
        json.dumps(value, allow_nan=False)
        stored = kv_t.c.value["seq"].as_integer()
        with self._write(durable) as conn:
            moved = conn.execute(
                update(kv_t)
                .where(kv_t.c.key == key, or_(stored.is_(None), stored < seq))
                .values(value=value, updated_at=utcnow())
            ).rowcount
            if moved:
                return True
            if conn.execute(select(kv_t.c.key).where(kv_t.c.key == key)).first() is not None:
                return False  # a writer got further first
            conn.execute(insert(kv_t).values(key=key, value=value, updated_at=utcnow()))
            return True

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

    def record_equity(
        self, ts: datetime, mode: str, equity: Decimal, cash: Decimal, account: str = ""
    ) -> None:
        """Append one point to the equity curve of `mode` for `account` (`records.equity_account`; "" for
        the paper book)."""
        with self._write() as conn:
            conn.execute(
                equity_t.insert().values(
                    ts=ts, mode=check_mode(mode), equity=equity, cash=cash, account=account
                )
            )

    def equity_curve(
        self, mode: str, since: datetime | None = None, account: str | None = None
    ) -> list[EquityPoint]:
        """The equity curve of `mode` in time order: every account's points, or only `account`'s."""
        q = select(equity_t).where(equity_t.c.mode == check_mode(mode))
        if since is not None:
            q = q.where(equity_t.c.ts >= since)
        if account is not None:
            q = q.where(equity_t.c.account == account)
        with self._read() as conn:
            rows = conn.execute(q.order_by(equity_t.c.ts, equity_t.c.id)).mappings().all()
        return [
            EquityPoint(ts=r["ts"], mode=r["mode"], equity=r["equity"], cash=r["cash"], account=r["account"])
            for r in rows
        ]

    def equity_marks(
        self, mode: str, now: datetime, account: str = ""
    ) -> tuple[Decimal | None, Decimal | None]:
        """(the equity the day of `now` opened with, the peak so far) of `account`'s curve in `mode`
        (`joe.store.records.equity_marks_of`); another account's marks, or rows of unknown account
        (before schema v4), never count."""
        return equity_marks_of(self.equity_curve(mode, account=account), now)

    def paper_track_record(self, now: datetime | None = None) -> TrackRecord:
        """The paper track record the live gate reads, counted so that back-dating cannot inflate it.

        Only *on-the-day* paper runs count: runs whose as-of was their own trading day, i.e. at most
        `ON_THE_DAY_SLACK_DAYS` calendar days before the wall-clock day the run started (a weekend or
        holiday uses the bar before). A back-dated `joe run --once --as-of 2005-01-03` is not one.

        - `paper_days`: whole wall-clock days since the first on-the-day paper run started.
        - `closed_paper_trades`: closed paper positions opened by an on-the-day run and closed on a bar
          no later than the newest on-the-day run's as-of (so neither end was back- or forward-dated).

        Source of the rule: DESIGN.md "Mode gates for live" (30 calendar days of wall-clock paper
        trading, 50 closed paper trades); issue 10 (13 back-dated runs made 3246 "days").
        """
        now = ensure_utc(now) if now is not None else utcnow()
        with self._read() as conn:
            runs = conn.execute(
                select(runs_t.c.run_id, runs_t.c.started_at, runs_t.c.as_of).where(
                    runs_t.c.mode == "paper", runs_t.c.as_of.is_not(None)
                )
            ).all()
            honest: dict[str, datetime] = {}
            for run_id, started, as_of in runs:
                started_day, as_of_day = _as_utc(started).date(), _as_utc(as_of).date()
                if 0 <= (started_day - as_of_day).days <= ON_THE_DAY_SLACK_DAYS:
                    honest[str(run_id)] = _as_utc(started)
            if not honest:
                return TrackRecord(paper_days=0, closed_paper_trades=0)
            newest_as_of = max(_as_utc(a) for r, _, a in runs if str(r) in honest)
            closed_rows = conn.execute(
                select(pos_t.c.closed_at, sig_t.c.run_id)
                .select_from(pos_t.join(sig_t, pos_t.c.signal_id == sig_t.c.signal_id))
                .where(pos_t.c.mode == "paper", pos_t.c.status == "closed")
            ).all()
        closed = sum(
            1
            for closed_at, run_id in closed_rows
            if str(run_id) in honest
            and closed_at is not None
            and _as_utc(closed_at).date() <= newest_as_of.date()
        )
        days = max(0, (now - min(honest.values())).days)
        return TrackRecord(paper_days=days, closed_paper_trades=closed)


def _as_utc(v: Any) -> datetime:
    if isinstance(v, str):
        v = datetime.fromisoformat(v)
    return ensure_utc(v)
