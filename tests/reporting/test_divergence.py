"""`joe report --divergence` (issue 13 Deliver 4): intended vs actual from a data folder's live store
and its paper twin, or from shadow intents and the shadow book."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from joe.audit.log import AuditLog
from joe.cli import report_cmd
from joe.core.ids import client_order_id
from joe.core.models import Fill, OrderIntent, OrderLeg, Side
from joe.core.order import Order, OrderState
from joe.reporting.divergence import from_live, from_shadow
from joe.store import Store, open_store

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
runner = CliRunner()


def _order(signal: str, symbol: str, qty: str, at: datetime, ack_s: float | None) -> Order:
    cid = client_order_id(signal, OrderLeg.ENTRY.value)
    o = Order(OrderIntent(cid, signal, OrderLeg.ENTRY, symbol, Side.BUY, Decimal(qty)), created_at=at)
    o.transition(OrderState.SUBMITTING, ts=at)
    if ack_s is not None:
        o.transition(OrderState.ACCEPTED, ts=at + timedelta(seconds=ack_s))
    return o


def _fill(o: Order, fid: str, qty: str, price: str, at: datetime, commission: str = "0") -> Fill:
    return Fill(fid, o.client_order_id, o.intent.symbol, o.intent.side, Decimal(qty), Decimal(price), at,
                Decimal(commission))  # fmt: skip


def _save(store: Store, o: Order, fills: list[Fill], mode: str) -> None:
    for f in fills:
        o.apply_fill(f)
    store.save_order(o, broker="ibkr", mode=mode)


def _live_folder(tmp: Path) -> None:
    """Two signals: AAPL filled live in two executions (and in the twin), MSFT rejected live but
    filled by the twin (a missed fill)."""
    live, twin = open_store(data_dir=tmp), open_store(f"sqlite:///{tmp / 'twin-live.db'}", data_dir=tmp)
    try:
        a = _order("sig-a", "AAPL", "3", T0, ack_s=0.5)
        _save(live, a, [_fill(a, "x1", "1", "100.20", T0 + timedelta(seconds=2), "1"),
                        _fill(a, "x2", "2", "100.50", T0 + timedelta(seconds=3), "1")], "live")  # fmt: skip
        m = _order("sig-m", "MSFT", "2", T0, ack_s=None)
        m.transition(OrderState.REJECTED, ts=T0 + timedelta(seconds=1))
        live.save_order(m, broker="ibkr", mode="live")
        ta, tm = _order("sig-a", "AAPL", "3", T0, 0), _order("sig-m", "MSFT", "2", T0, 0)
        _save(twin, ta, [_fill(ta, "p1", "3", "100.00", T0, "0.5")], "paper")
        _save(twin, tm, [_fill(tm, "p2", "2", "200.00", T0, "0.5")], "paper")
    finally:
        live.close()
        twin.close()


def test_live_vs_twin_from_a_data_folder(tmp_path: Path) -> None:
    _live_folder(tmp_path)
    result = runner.invoke(report_cmd.report_app, ["--divergence", "--json", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert (doc["intended"], doc["filled"], doc["missed"]) == (2, 1, 1)
    assert list(doc["missed_orders"].values()) == ["live order REJECTED"]
    # AAPL: VWAP (100.20 + 2 × 100.50) / 3 = 100.40 against 100.00 → 40 bp worse, cost 1.20 + 1.50 commission
    assert doc["orders"][0]["slippage_bp"] == "40.0"
    assert doc["pnl_gap"] == "-2.70"
    lat = doc["latency_s"]
    assert lat["signal_to_ack"]["max"] == 0.5 and lat["ack_to_fill"]["max"] == 1.5
    assert lat["signal_to_fill"]["n"] == 1 and lat["signal_to_fill"]["p50"] == 2.0
    md = runner.invoke(report_cmd.report_app, ["--divergence", "--data-dir", str(tmp_path)])
    assert "Intended 2, filled 1, missed 1" in md.output and "live order REJECTED" in md.output


def test_shadow_intents_vs_the_shadow_book(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit", fsync=False)
    book = open_store(f"sqlite:///{tmp_path / 'twin-shadow.db'}", data_dir=tmp_path)
    try:
        for sig, sym, price in (("s1", "AAPL", "100"), ("s2", "MSFT", None)):
            cid = client_order_id(sig, OrderLeg.ENTRY.value)
            payload = {"symbol": sym, "side": "BUY", "quantity": "2", "live_price": price}
            audit.record("shadow.intent", payload, signal_id=sig, client_order_id=cid)
        o = _order("s1", "AAPL", "2", T0, 0)
        _save(book, o, [_fill(o, "b1", "2", "100.05", T0)], "paper")
    finally:
        audit.close()
        book.close()
    result = runner.invoke(
        report_cmd.report_app, ["--divergence", "--shadow", "--json", "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert (doc["intended"], doc["filled"], doc["missed"]) == (2, 1, 1)
    assert list(doc["missed_orders"].values()) == ["no live quote"]
    assert doc["slippage_bp"]["p50"] == 5.0 and doc["pnl_gap"] == "-0.10" and doc["latency_s"] is None


def test_no_twin_yet_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(report_cmd.report_app, ["--divergence", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "twin-live.db does not exist: run Joe in live mode first" in result.output


prices = st.decimals(min_value=Decimal("1"), max_value=Decimal("1000"), places=2)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(prices, prices, st.integers(1, 5), st.booleans(), st.booleans()), max_size=12))
def test_the_counts_and_the_gap_add_up(rows: list[tuple[Decimal, Decimal, int, bool, bool]]) -> None:
    """Every intended order is filled or missed; the gap is the sum of the matched orders' gaps, each
    (model − live) × quantity for a buy; slippage is positive exactly when live paid more."""
    orders, fills, twin = [], [], []
    expected_gap = Decimal(0)
    for i, (live_px, model_px, qty, live_fills, twin_fills) in enumerate(rows):
        o = _order(f"s{i}", "AAPL", str(qty), T0, 0.1)
        orders.append(o)
        if live_fills:
            fills.append(_fill(o, f"x{i}", str(qty), str(live_px), T0 + timedelta(seconds=1)))
        if twin_fills:
            twin.append(_fill(o, f"p{i}", str(qty), str(model_px), T0))
        if live_fills and twin_fills:
            expected_gap += (model_px - live_px) * qty
    d = from_live(orders, fills, twin)
    doc = d.to_dict()
    assert (
        doc["intended"]
        == len(rows)
        == doc["filled"] + doc["missed"] + len([r for r in rows if r[3] and not r[4]])
    )
    assert d.pnl_gap == expected_gap
    assert all((m.slippage_bp > 0) == (m.actual_price > m.intended_price) for m in d.matches)
    assert doc["latency_s"]["signal_to_fill"]["n"] == sum(1 for r in rows if r[3])
    assert from_shadow([], []).to_dict()["intended"] == 0
