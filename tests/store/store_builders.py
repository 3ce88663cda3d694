"""Small domain builders shared by the store tests (a uniquely named module, not conftest, so it
cannot clash with other packages' test helpers on sys.path)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from joe.core.models import Direction, Fill, OrderIntent, OrderLeg, OrderType, Side, Signal
from joe.core.order import Order

T0 = datetime(2024, 3, 1, 14, 30, 0, 123456, tzinfo=UTC)


def make_order(
    coid: str = "joe-1", qty: str = "10", order_type: OrderType = OrderType.LIMIT, **kw: object
) -> Order:
    intent = OrderIntent(
        client_order_id=coid,
        signal_id=str(kw.pop("signal_id", "sig-1")),
        leg=OrderLeg.ENTRY,
        symbol=str(kw.pop("symbol", "AAPL")),
        side=Side.BUY,
        quantity=Decimal(qty),
        order_type=order_type,
        limit_price=Decimal("187.1234567891") if order_type is OrderType.LIMIT else None,
        stop_loss=Decimal("180.5"),
        take_profit=Decimal("199.99"),
        trailing_distance=Decimal("0.1"),
        **kw,  # type: ignore[arg-type]
    )
    return Order(intent=intent, created_at=T0, updated_at=T0)


def make_fill(
    fill_id: str, coid: str = "joe-1", qty: str = "1", price: str = "187.1", minutes: int = 0
) -> Fill:
    return Fill(
        fill_id=fill_id,
        client_order_id=coid,
        symbol="AAPL",
        side=Side.BUY,
        quantity=Decimal(qty),
        price=Decimal(price),
        ts=T0 + timedelta(minutes=minutes),
        commission=Decimal("0.35"),
        broker_order_id="B-1",
    )


def make_signal(sid: str = "trend:aapl:2024-03-01:long", **kw: object) -> Signal:
    base: dict[str, object] = {
        "signal_id": sid,
        "symbol": "AAPL",
        "strategy": "trend",
        "direction": Direction.LONG,
        "entry": Decimal("100.1"),
        "stop_loss": Decimal("95.3"),
        "take_profit": Decimal("110.7"),
        "confidence": 0.71,
        "reason": "breakout above 20d high",
        "as_of": T0,
        "trailing_distance": Decimal("2.5"),
        "score": 83.25,
        "quantity": Decimal("12"),
        "risk_grade": "B",
        "meta": {"regime": "bull", "atr": 1.5},
    }
    base.update(kw)
    return Signal(**base)  # type: ignore[arg-type]
