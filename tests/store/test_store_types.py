"""Exactness of stored values: Decimal as text, timestamps as aware UTC."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, Numeric, Table, insert, select

from joe.store import Store, open_store
from joe.store.sqltypes import DecimalText, UTCDateTime, json_dumps

_names = itertools.count()
_fixture_ok = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)

decimals = st.decimals(
    min_value=Decimal("-1e17"), max_value=Decimal("1e17"), places=10, allow_nan=False, allow_infinity=False
)


@_fixture_ok
@given(cash=decimals, start=decimals, pnl=decimals)
def test_decimals_round_trip_exactly(store: Store, cash: Decimal, start: Decimal, pnl: Decimal) -> None:
    name = f"acct-{next(_names)}"
    store.save_paper_account(name=name, cash=cash, starting_cash=start, realized_pnl=pnl)
    row = store.get_paper_account(name)
    assert row is not None
    assert (row.cash, row.starting_cash, row.realized_pnl) == (cash, start, pnl)
    # Same representation too (exponent kept), not just numerically equal.
    assert (str(row.cash), str(row.starting_cash), str(row.realized_pnl)) == (str(cash), str(start), str(pnl))


def test_sum_of_tenths_is_exact_where_sqlite_numeric_is_not(store: Store) -> None:
    total = sum((Decimal("0.1") for _ in range(3)), Decimal(0))
    store.save_paper_account(cash=total, starting_cash=Decimal("0.3"), realized_pnl=Decimal("1e-10"))
    row = store.get_paper_account()
    assert row is not None and row.cash == Decimal("0.3") and row.cash == row.starting_cash
    assert row.realized_pnl == Decimal("0.0000000001")

    # The reason for DecimalText: plain Numeric on SQLite goes through a float.
    md = MetaData()
    t = Table("numeric_probe", md, Column("id", Integer, primary_key=True), Column("v", Numeric(28, 10)))
    with store.engine.begin() as conn:
        md.create_all(conn)
        conn.execute(insert(t).values(id=1, v=Decimal("1234567890123.0000000001")))
        back = conn.execute(select(t.c.v)).scalar_one()
        md.drop_all(conn)
    assert back != Decimal("1234567890123.0000000001")


def test_high_precision_decimals_are_not_cut(store: Store) -> None:
    long_ = Decimal("1." + "3" * 60)
    store.save_paper_account(cash=long_, starting_cash=-long_, realized_pnl=Decimal("1E+30"))
    row = store.get_paper_account()
    assert row is not None and row.cash == long_ and row.starting_cash == -long_
    assert str(row.realized_pnl) == "1E+30"


def test_decimal_text_refuses_floats_and_non_finite(store: Store) -> None:
    dt = DecimalText()
    dialect = store.engine.dialect
    with pytest.raises(TypeError):
        dt.process_bind_param(0.1, dialect)
    with pytest.raises(ValueError):
        dt.process_bind_param(Decimal("NaN"), dialect)
    with pytest.raises(ValueError):
        dt.process_bind_param(Decimal("Infinity"), dialect)
    assert dt.process_bind_param(7, dialect) == "7"
    assert dt.process_bind_param("1.50", dialect) == "1.50"


aware = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]),
)


@_fixture_ok
@given(ts=aware)
def test_timestamps_round_trip_as_aware_utc(store: Store, ts: datetime) -> None:
    store.record_equity(ts, "paper", Decimal(1), Decimal(1))
    back = store.equity_curve("paper", since=ts)[0].ts
    assert back == ts
    assert back.tzinfo is UTC and back.utcoffset() == timedelta(0)


def test_naive_timestamps_are_taken_as_utc() -> None:
    s = open_store("sqlite://")
    s.record_equity(datetime(2024, 1, 2, 3, 4, 5), "paper", Decimal(1), Decimal(1))
    assert s.equity_curve("paper")[0].ts == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_utc_datetime_binds_utc_wall_time_on_sqlite() -> None:
    store = open_store("sqlite://")
    col = UTCDateTime()
    ist = datetime(2024, 1, 1, 5, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert col.process_bind_param(ist, store.engine.dialect) == datetime(2024, 1, 1, 0, 0)
    with pytest.raises(TypeError):
        col.process_bind_param("2024-01-01", store.engine.dialect)


def test_json_serializer_keeps_decimals_exact() -> None:
    assert json_dumps({"b": Decimal("0.1000000001"), "a": {1, 2} - {2}}) == '{"a": [1], "b": "0.1000000001"}'
    with pytest.raises(TypeError):
        json_dumps({"x": object()})
