"""The dashboard's broker-side stop distance is measured from the current price — the broker's market
price of the latest live run — not from the entry fill (review r16); only when no price is known does
it fall back to the entry, and says so (`distance_from`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from fastapi.testclient import TestClient

from joe.core.ids import client_order_id
from joe.core.models import Fill, OrderIntent, OrderLeg, OrderType, Side
from joe.core.order import Order, OrderState
from joe.runtime.bootstrap import Runtime

D = Decimal
T0 = datetime(2026, 11, 30, 15, tzinfo=UTC)


def bearer(t: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {t}"}


def live_bracket(rt: Runtime, sig: str, entry_price: str, stop_price: str) -> None:
    q = D(10)
    entry = Order(OrderIntent(client_order_id(sig, "entry"), sig, OrderLeg.ENTRY, "AAPL", Side.BUY, q))
    stop = Order(
        OrderIntent(client_order_id(sig, "stop"), sig, OrderLeg.STOP_LOSS, "AAPL", Side.SELL, q,
                    order_type=OrderType.STOP, stop_price=D(stop_price), reduce_only=True),
        parent_client_order_id=entry.client_order_id,
    )  # fmt: skip
    for o in (entry, stop):
        o.transition(OrderState.SUBMITTING)
        o.transition(OrderState.ACCEPTED)
    entry.apply_fill(Fill(f"x-{sig}", entry.client_order_id, "AAPL", Side.BUY, q, D(entry_price), T0))
    for o in (entry, stop):
        rt.store.save_order(o, broker="ibkr", mode="live")


def live_run_with_price(rt: Runtime, tmp: Path, price: str | None) -> None:
    report = tmp / "reports" / "r1"
    report.mkdir(parents=True)
    positions = [] if price is None else [{"symbol": "AAPL", "quantity": "10", "avg_price": "100",
                                            "market_price": price}]  # fmt: skip
    (report / "live.json").write_text(json.dumps({"positions": positions}))
    rt.store.start_run("r1", mode="live", broker="ibkr", source="ibkr", started_at=T0)
    rt.store.finish_run("r1", "ok", summary={}, report_dir=str(report), finished_at=T0)


def stops_of(client: TestClient, token: str) -> dict:  # type: ignore[type-arg]
    r = client.get("/api/positions", headers=bearer(token))
    assert r.status_code == 200, r.text
    (row,) = r.json()["broker_positions"]
    return row


def test_distance_is_from_the_broker_price_not_the_entry(
    client: TestClient, rt: Runtime, token: str, tmp_path: Path
) -> None:
    live_bracket(rt, "s1", entry_price="100", stop_price="95")
    before = stops_of(client, token)  # no run with a price yet: from the entry, and it says so
    assert before["distance_from"] == "entry" and before["broker_stops"][0]["distance_pct"] == "5.00"
    live_run_with_price(rt, tmp_path, "120")  # the price ran up: the stop is 25 below it now
    row = stops_of(client, token)
    assert row["distance_from"] == "mark" and row["price"] == "120"
    assert row["broker_stops"][0]["distance_pct"] == "20.83"  # (120 - 95) / 120
    page = client.get("/positions", headers=bearer(token))
    assert "distance from the price" in page.text and "20.83 %" in page.text


def test_a_run_without_the_symbols_price_falls_back_to_the_entry(
    client: TestClient, rt: Runtime, token: str, tmp_path: Path
) -> None:
    live_bracket(rt, "s1", entry_price="100", stop_price="95")
    live_run_with_price(rt, tmp_path, None)
    row = stops_of(client, token)
    assert row["distance_from"] == "entry" and row["broker_stops"][0]["distance_pct"] == "5.00"
