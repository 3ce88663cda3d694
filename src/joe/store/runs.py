"""Pipeline runs and the signals they produced."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import RowMapping, select, update

from joe.core.clock import utcnow
from joe.core.models import Direction, Signal
from joe.store._base import StoreBase, check_mode, insert_ignore
from joe.store.errors import NotFoundError, StoreError
from joe.store.records import RunRow
from joe.store.schema import pipeline_runs as runs_t
from joe.store.schema import signals as signals_t


def _signal_from_row(r: RowMapping) -> Signal:
    return Signal(
        signal_id=r["signal_id"],
        symbol=r["symbol"],
        strategy=r["strategy"],
        direction=Direction(r["direction"]),
        entry=r["entry"],
        stop_loss=r["stop_loss"],
        take_profit=r["take_profit"],
        confidence=r["confidence"],
        reason=r["reason"],
        as_of=r["as_of"],
        trailing_distance=r["trailing_distance"],
        score=r["score"],
        quantity=r["quantity"],
        risk_grade=r["risk_grade"],
        meta=dict(r["meta"] or {}),
    )


def _run_from_row(r: RowMapping) -> RunRow:
    return RunRow(**{f: r[f] for f in RunRow.__dataclass_fields__})


class RunRepository(StoreBase):
    """Pipeline runs and signals."""

    def save_signals(self, run_id: str | None, signals: Iterable[Signal]) -> int:
        """Store signals once each (by `signal_id`); returns how many were new."""
        now = utcnow()
        new = 0
        with self._write() as conn:
            for s in signals:
                values: dict[str, Any] = {
                    "signal_id": s.signal_id,
                    "run_id": run_id,
                    "symbol": s.symbol,
                    "strategy": s.strategy,
                    "direction": s.direction.value,
                    "entry": s.entry,
                    "stop_loss": s.stop_loss,
                    "take_profit": s.take_profit,
                    "trailing_distance": s.trailing_distance,
                    "quantity": s.quantity,
                    "confidence": float(s.confidence),
                    "score": None if s.score is None else float(s.score),
                    "risk_grade": s.risk_grade,
                    "reason": s.reason,
                    "as_of": s.as_of,
                    "meta": s.meta or None,
                    "created_at": now,
                }
                new += insert_ignore(conn, signals_t, values, ["signal_id"])
        return new

    def get_signal(self, signal_id: str) -> Signal | None:
        """One stored signal, or None."""
        with self._read() as conn:
            r = conn.execute(select(signals_t).where(signals_t.c.signal_id == signal_id)).mappings().first()
        return _signal_from_row(r) if r else None

    def signals(self, run_id: str | None = None) -> list[Signal]:
        """Stored signals (of one run if given), oldest first; a batch saved together is ordered by id."""
        q = select(signals_t)
        if run_id is not None:
            q = q.where(signals_t.c.run_id == run_id)
        with self._read() as conn:
            rows = conn.execute(q.order_by(signals_t.c.created_at, signals_t.c.signal_id)).mappings().all()
        return [_signal_from_row(r) for r in rows]

    def start_run(
        self,
        run_id: str,
        mode: str,
        broker: str,
        source: str,
        as_of: datetime | date | None = None,
        started_at: datetime | None = None,
    ) -> RunRow:
        """Record that a run has started (status "running"). A run id can start only once.

        `as_of` is the data date the run looked at; a plain `date` is stored as its midnight UTC.
        """
        values = {
            "run_id": run_id,
            "started_at": started_at or utcnow(),
            "mode": check_mode(mode),
            "broker": broker,
            "source": source,
            "as_of": as_of,
            "status": "running",
        }
        with self._write() as conn:
            if not insert_ignore(conn, runs_t, values, ["run_id"]):
                raise StoreError(f"run {run_id} already exists")
            return _run_from_row(
                conn.execute(select(runs_t).where(runs_t.c.run_id == run_id)).mappings().one()
            )

    def finish_run(
        self,
        run_id: str,
        status: str,
        summary: dict[str, Any] | None = None,
        report_dir: str | None = None,
        finished_at: datetime | None = None,
    ) -> RunRow:
        """Record a run's end, its status ("ok", "failed", ...), summary and report directory."""
        with self._write() as conn:
            n = conn.execute(
                update(runs_t)
                .where(runs_t.c.run_id == run_id)
                .values(
                    status=status,
                    summary=summary,
                    report_dir=None if report_dir is None else str(report_dir),
                    finished_at=finished_at or utcnow(),
                )
            ).rowcount
            if n == 0:
                raise NotFoundError(f"run {run_id} was never started")
            return _run_from_row(
                conn.execute(select(runs_t).where(runs_t.c.run_id == run_id)).mappings().one()
            )

    def interrupt_unfinished_runs(self, finished_at: datetime | None = None) -> list[RunRow]:
        """Mark every run still "running" as "interrupted" (a SIGKILL or power loss stopped it before
        `finish_run`) and return them as they are now. Only for a process that holds the data folder's
        lock alone: then no run of those is alive."""
        at = finished_at or utcnow()
        with self._write() as conn:
            ids = [r for (r,) in conn.execute(select(runs_t.c.run_id).where(runs_t.c.status == "running"))]
            if not ids:
                return []
            conn.execute(
                update(runs_t)
                .where(runs_t.c.run_id.in_(ids), runs_t.c.status == "running")
                .values(status="interrupted", finished_at=at)
            )
            rows = conn.execute(select(runs_t).where(runs_t.c.run_id.in_(ids))).mappings().all()
        return [_run_from_row(r) for r in rows]

    def get_run(self, run_id: str) -> RunRow | None:
        """One run, or None."""
        with self._read() as conn:
            r = conn.execute(select(runs_t).where(runs_t.c.run_id == run_id)).mappings().first()
        return _run_from_row(r) if r else None

    def latest_run(self, status: str | None = None) -> RunRow | None:
        """The most recently started run (optionally with a given status), or None."""
        q = select(runs_t)
        if status is not None:
            q = q.where(runs_t.c.status == status)
        with self._read() as conn:
            r = (
                conn.execute(q.order_by(runs_t.c.started_at.desc(), runs_t.c.run_id.desc()))
                .mappings()
                .first()
            )
        return _run_from_row(r) if r else None
