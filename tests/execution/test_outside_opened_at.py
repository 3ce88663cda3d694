"""`outside._opened_at`: when an entry opened its position, on the broker's clock - the bound an owner's
execution must pass to count as a change of Joe's position (joe.execution.outside).

Hostile review 2 of the broker-clock work: with the entry known only by an estimate (IBKR answers
`reqExecutions` for the current day only: after a restart the next day the entry's fill is estimated),
the bound fell back to the entry's creation on Joe's clock; with TWS 3 h behind, an owner's sale ten
minutes after the entry looked older than it, was recorded external, and Joe's stop later sold 100 of
the 60 left."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from joe.core.models import Fill, OrderIntent, OrderLeg, Side
from joe.core.order import Order
from joe.execution.estimated_fills import estimate_id
from joe.execution.outside import _SECOND, _opened_at

TWS_FILL = datetime(2026, 12, 1, 23, 59, tzinfo=UTC)  # the entry's execution, on the broker's clock
D = Decimal


def _entry(fills: list[Fill], created: datetime) -> Order:
    it = OrderIntent("e1", "sig", OrderLeg.ENTRY, "AAPL", Side.BUY, D(100))
    return Order(it, filled_quantity=sum((f.quantity for f in fills), D(0)),
                 fills={f.fill_id: f for f in fills}, created_at=created)  # fmt: skip


def _real(ts: datetime, qty: int = 100, n: int = 1) -> Fill:
    return Fill(f"x{n}", "e1", "AAPL", Side.BUY, D(qty), D(100), ts)


def _estimate(report_ts: datetime, qty: int = 100) -> Fill:
    return Fill(estimate_id("e1"), "e1", "AAPL", Side.BUY, D(qty), D(100), report_ts)


@given(skew_s=st.integers(-3 * 86400, 3 * 86400), sale_after_s=st.integers(1, 6 * 3600))
def test_an_owners_sale_after_an_estimated_entry_counts_whatever_the_skew(
    skew_s: int, sale_after_s: int
) -> None:
    """Broker clock = Joe's + skew. The entry was created 2 s before its execution; it is known only by an
    estimate stamped at a later report. Any owner's sale after the execution passes the bound."""
    skew = timedelta(seconds=skew_s)
    created = TWS_FILL - timedelta(seconds=2) - skew  # Joe's clock
    entry = _entry([_estimate(TWS_FILL + timedelta(hours=7))], created)
    sale = TWS_FILL + timedelta(seconds=sale_after_s)
    assert _opened_at(entry, skew) - _SECOND <= sale


def test_real_executions_decide_and_the_skew_is_not_needed() -> None:
    entry = _entry(
        [_real(TWS_FILL + timedelta(seconds=5), 60, 2), _real(TWS_FILL, 40, 1)], TWS_FILL + timedelta(hours=3)
    )
    assert _opened_at(entry, timedelta(hours=-3)) == TWS_FILL
    assert _opened_at(entry, timedelta(hours=+9)) == TWS_FILL  # a wrong skew changes nothing


def test_an_estimate_beside_a_later_real_fill_bounds_by_the_creation_on_the_brokers_clock() -> None:
    """The early part estimated, a later part real: the first real fill is too late a bound (a sale
    between them would be dropped); the creation moved onto the broker's clock is earlier."""
    skew = timedelta(hours=-3)  # the broker 3 h behind
    created = TWS_FILL - timedelta(seconds=2) - skew
    later = TWS_FILL + timedelta(minutes=20)
    entry = _entry([_estimate(TWS_FILL + timedelta(hours=7), 40), _real(later, 60)], created)
    assert _opened_at(entry, skew) == TWS_FILL - timedelta(seconds=2)
    assert _opened_at(entry, skew) < TWS_FILL + timedelta(minutes=10)  # a sale between the two counts
