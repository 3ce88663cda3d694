"""The daily-loss and drawdown baselines are per broker account (review r1119 finding 4).

A demo and a real account of one broker (the going-live path keeps one data folder), or two brokers, write
equity marks to the same store: each account's `equity_marks` reads its own points only. Rows written
before schema v4 (no account) are kept and migrated with account "" — unknown, never a broker account's
baseline. Property: interleaving other accounts' marks never changes an account's marks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from joe.config.schema import RiskConfig
from joe.core.events import NullAudit
from joe.safety.risk_gate import GateBook, ProposedOrder, RiskGate
from joe.safety.rules.account import DailyLossLimit, MaxDrawdown
from joe.store import migrations as mig
from joe.store import open_store
from joe.store.records import equity_account, equity_marks_of

D1 = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
D2 = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
IBKR_REAL, IBKR_DEMO, CAPITAL = (
    equity_account("ibkr", "U1234567"),
    equity_account("ibkr", "DU1"),
    equity_account("capital", "acc-1"),
)


def _verdict(store: object, account: str, equity_now: Decimal, now: datetime) -> str | None:
    start, peak = store.equity_marks("live", now, account)  # type: ignore[attr-defined]
    start = start if start is not None else equity_now  # as the daily book does on a first day
    peak = peak if peak is not None and peak >= start else start
    book = GateBook(
        now=now, equity=equity_now, positions=[], quotes={}, day_start_equity=start, peak_equity=peak
    )
    gate = RiskGate(RiskConfig(), NullAudit(), rules=[DailyLossLimit(), MaxDrawdown()])
    d = gate.check(ProposedOrder("s", "AAPL", Decimal(1), Decimal(100)), book)
    return None if d is None else d.text()


def test_a_loss_at_one_broker_is_not_hidden_by_the_other_brokers_mark(tmp_path: Path) -> None:
    store = open_store(None, data_dir=tmp_path)
    store.record_equity(D1.replace(hour=14), "live", Decimal(1_000_000), Decimal(1_000_000), IBKR_REAL)
    store.record_equity(D1.replace(hour=16), "live", Decimal(100_000), Decimal(100_000), CAPITAL)
    assert store.equity_marks("live", D2, IBKR_REAL) == (Decimal(1_000_000), Decimal(1_000_000))
    verdict = _verdict(store, IBKR_REAL, Decimal(900_000), D2)  # -10 % on IBKR's own day (limit 3 %)
    assert verdict is not None and "daily_loss_limit" in verdict
    assert _verdict(store, CAPITAL, Decimal(99_000), D2) is None  # Capital.com: -1 %, fine
    store.close()


def test_the_real_account_after_the_demo_starts_from_its_own_equity(tmp_path: Path) -> None:
    store = open_store(None, data_dir=tmp_path)
    store.record_equity(D1, "live", Decimal(1_000_000), Decimal(1_000_000), IBKR_DEMO)  # going live, step 3
    assert store.equity_marks("live", D2, IBKR_REAL) == (None, None)
    assert _verdict(store, IBKR_REAL, Decimal(25_000), D2) is None  # first real-money day: no demo peak
    store.close()


def test_rows_before_v4_are_kept_but_are_no_accounts_baseline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'joe.db'}"
    monkeypatch.setattr(mig, "MIGRATIONS", mig.MIGRATIONS[:3])
    v3 = open_store(url)
    with v3.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO equity_history (ts, mode, equity, cash) VALUES "
                "('2026-11-30T15:00:00.000000+00:00', 'live', '1000000', '1000000')"
            )
        )
    v3.close()
    monkeypatch.undo()
    store = open_store(url)
    assert store.schema_version() == mig.latest_version() >= 4
    (old,) = store.equity_curve("live")
    assert old.account == "" and old.equity == Decimal(1_000_000)  # kept, account unknown
    assert store.equity_marks("live", D2, IBKR_REAL) == (None, None)  # not the real account's baseline
    store.record_equity(D2, "live", Decimal(25_000), Decimal(25_000), IBKR_REAL)
    assert store.equity_marks("live", D2, IBKR_REAL) == (Decimal(25_000), Decimal(25_000))
    assert [p.account for p in store.equity_curve("live")] == ["", IBKR_REAL]
    store.close()


_accounts = st.sampled_from([IBKR_REAL, IBKR_DEMO, CAPITAL, ""])
_points = st.lists(
    st.tuples(_accounts, st.integers(0, 72), st.integers(1, 2_000_000)), min_size=1, max_size=25
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(points=_points, hours=st.integers(0, 80))
def test_each_accounts_marks_are_those_of_its_own_curve(tmp_path: Path, points: list, hours: int) -> None:
    store = open_store(None, data_dir=tmp_path / f"p{abs(hash((tuple(points), hours)))}")
    t0 = datetime(2026, 11, 28, tzinfo=UTC)
    for acc, h, eq in points:
        store.record_equity(t0 + timedelta(hours=h), "live", Decimal(eq), Decimal(eq), acc)
    now = t0 + timedelta(hours=hours)
    for acc in (IBKR_REAL, IBKR_DEMO, CAPITAL, ""):
        own = [p for p in store.equity_curve("live") if p.account == acc]
        assert store.equity_marks("live", now, acc) == equity_marks_of(own, now)
    store.close()
