"""/metrics reads the order events incrementally (review r16, 12): a scrape reads the rows added since
the last one (plus a bounded overlap), never the whole history, and the figures equal a from-scratch
count whatever the order of scrapes and writes. Equity is read as one row per mode."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from joe.core.order import OrderState
from joe.metrics import metrics_registry
from joe.metrics.event_tally import EVENT_OVERLAP
from joe.runtime.bootstrap import Runtime

from .test_metrics import _order, scrape, value

PATHS = [
    [(OrderState.SUBMITTING, 0), (OrderState.ACCEPTED, 0.04), (OrderState.FILLED, 0.3)],
    [(OrderState.SUBMITTING, 0), (OrderState.REJECTED, 0.02)],
    [(OrderState.SUBMITTING, 0), (OrderState.UNKNOWN, 5)],
    [(OrderState.SUBMITTING, 0), (OrderState.ACCEPTED, 2.0)],
]


def collector_of(reg: object):  # the StoreCollector registered first
    return next(iter(reg._collector_to_names))  # type: ignore[attr-defined]


def test_a_scrape_reads_only_new_rows_and_counts_each_once(rt: Runtime) -> None:
    reg = metrics_registry(rt.store)
    tally = collector_of(reg)._events_state
    for i in range(30):
        _order(rt, f"a{i}", "1", PATHS[i % len(PATHS)])
    first = scrape(reg)
    assert value(first, "joe_order_rejects_total", mode="live", broker="ibkr") == 8.0
    assert value(first, "joe_order_unknown_total", mode="live", broker="ibkr") == 7.0
    assert value(first, "joe_order_latency_seconds_count", broker="ibkr", stage="ack") == 15.0
    read = tally.rows_read
    again = scrape(reg)  # nothing new: the same figures, only the overlap window read again
    assert {k: v for k, v in again.items() if k[0].startswith("joe_order")} == {
        k: v for k, v in first.items() if k[0].startswith("joe_order")
    }
    assert tally.rows_read - read <= min(EVENT_OVERLAP, read)
    _order(rt, "b1", "1", PATHS[1])
    later = scrape(reg)
    assert value(later, "joe_order_rejects_total", mode="live", broker="ibkr") == 9.0
    assert tally.pending_orders == 14  # only non-terminal orders are remembered (UNKNOWN, ACCEPTED)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.tuples(st.integers(0, 3), st.booleans()), min_size=1, max_size=25))
def test_incremental_scrapes_equal_a_fresh_count(rt: Runtime, plan: list[tuple[int, bool]]) -> None:
    reg = metrics_registry(rt.store)
    start = len(rt.store.orders())
    for k, (path, scrape_now) in enumerate(plan):
        _order(rt, f"p{start}-{k}", "1", PATHS[path])
        if scrape_now:
            scrape(reg)
    incremental = scrape(reg)
    fresh = scrape(metrics_registry(rt.store))
    names = ("joe_order_rejects_total", "joe_order_unknown_total", "joe_order_latency_seconds")
    pick = lambda d: {k: v for k, v in d.items() if k[0].startswith(names)}  # noqa: E731
    assert pick(incremental) == pick(fresh)
    assert pick(fresh)  # something was counted


def test_equity_gauge_is_the_last_point(rt: Runtime) -> None:
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    t0 = datetime(2026, 11, 30, tzinfo=UTC)
    for i, eq in enumerate(("1000", "1100", "1050")):
        rt.store.record_equity(t0 + timedelta(days=i), mode="live", equity=Decimal(eq), cash=Decimal(0))
    assert value(scrape(metrics_registry(rt.store)), "joe_equity", mode="live") == 1050.0
