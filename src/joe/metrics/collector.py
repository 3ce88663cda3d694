"""`StoreCollector`: Joe's metrics read from the store at scrape time.

Reading the store (not counting in one process's memory) makes the numbers the same whichever
process serves them (the daemon, `joe web`), survive restarts, and count what `joe run --once`
did in its own process. Counters are monotonic because the rows they count are never deleted
(fills, order events); gauges are the state now.

Metric names (all prefixed ``joe_``):
- ``orders{mode,broker,state}`` gauge — orders by their current state;
- ``fills_total{mode,broker}``, ``order_rejects_total{mode,broker}``, ``order_unknown_total{mode,broker}``
  (transitions into REJECTED / UNKNOWN), ``reconciled_events_total{mode,broker}`` (changes learned by
  asking the broker) counters;
- ``order_latency_seconds{broker,stage}`` histogram — submit → ack (``ack``) and submit → first fill
  (``fill``), from the order events' timestamps;
- ``reconciliation_items{mode,broker,kind}`` gauge — external / lost / missed items the reconciler holds;
- ``trading_state{state}`` (1 for the current one) and ``trading_halted`` gauges;
- ``breaker_tripped{broker}``, ``margin_cushion{broker}``, ``equity{mode}`` gauges;
- ``daemon_heartbeat_age_seconds``, ``daemon_up``; per broker (each quote source of the daemon's
  `PriceStream`, from its heartbeat's ``sources``): ``quotes_total{broker}`` (its ``rate()`` is the quote
  rate; it counts the instruments watched now, so an unwatch is a counter reset), ``quote_age_seconds``
  (the newest quote's age now) and ``quote_stale_instruments``; a daemon without a quote source
  (``--broker sim``) reports ``broker="none"``;
- ``daemon_broker_connected``, ``reconciliation_unexplained`` (the live daemon's last reconciliation) gauges.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from joe.core.clock import utcnow
from joe.metrics.event_tally import LATENCY_BUCKETS, EventTally

if TYPE_CHECKING:
    from joe.store import Store

STATES = ("active", "reducing", "halted")


class StoreCollector(Collector):
    """Collects the metrics above from `store` on every scrape."""

    def __init__(self, store: Store, clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.clock = clock
        self._events_state = EventTally()

    def collect(self) -> Iterator[Metric]:
        yield from self._orders()
        yield from self._events()
        yield from self._fills()
        yield from self._reconciliation()
        yield from self._safety()
        yield from self._daemon()

    # -- orders, fills, events ----------------------------------------------------------------------

    def _rows(self, q: Any) -> list[Any]:
        from joe.store.engine import read_connection

        with read_connection(self.store.engine) as conn:
            return list(conn.execute(q).all())

    def _orders(self) -> Iterable[Metric]:
        from joe.store.schema import orders

        g = GaugeMetricFamily("joe_orders", "Orders by current state", labels=["mode", "broker", "state"])
        q = select(orders.c.mode, orders.c.broker, orders.c.state, func.count()).group_by(
            orders.c.mode, orders.c.broker, orders.c.state
        )
        for mode, broker, state, n in self._rows(q):
            g.add_metric([mode, broker, str(state).lower()], n)
        yield g

    def _fills(self) -> Iterable[Metric]:
        from joe.store.schema import fills

        c = CounterMetricFamily(
            "joe_fills", "Fills booked (unique by broker execution)", labels=["mode", "broker"]
        )
        q = select(fills.c.mode, fills.c.broker, func.count()).group_by(fills.c.mode, fills.c.broker)
        for mode, broker, n in self._rows(q):
            c.add_metric([mode, broker], n)
        yield c

    def _events(self) -> Iterable[Metric]:
        """Counters and latencies from the order events, read incrementally: each scrape reads only the
        rows added since the last one (by `order_events.id`, re-reading the last `EVENT_OVERLAP` ids so
        a row whose transaction committed late is still counted, once). Memory is bounded: per order
        only while it is not terminal; histograms are bucket counts."""
        self._events_state.update(self._rows, self.clock())
        ev = self._events_state
        for name, doc, data in (
            ("joe_order_rejects", "Order transitions into REJECTED", ev.rejects),
            ("joe_order_unknown", "Order transitions into UNKNOWN (ambiguous outcome)", ev.unknown),
            (
                "joe_reconciled_events",
                "Order changes learned from the broker by reconciliation",
                ev.reconciled,
            ),
        ):
            c = CounterMetricFamily(name, doc, labels=["mode", "broker"])
            for (mode, broker), n in sorted(data.items()):
                c.add_metric([mode, broker], n)
            yield c
        h = HistogramMetricFamily(
            "joe_order_latency_seconds",
            "Submit to ack / first fill, from order events",
            labels=["broker", "stage"],
        )
        for (broker, stage), (counts, total, n) in sorted(ev.latency.items()):
            buckets = [(str(b), k) for b, k in zip(LATENCY_BUCKETS, counts, strict=True)]
            buckets.append(("+Inf", n))
            h.add_metric([broker, stage], buckets, total)
        yield h

    def _reconciliation(self) -> Iterable[Metric]:
        from joe.store.schema import reconcile_items

        g = GaugeMetricFamily(
            "joe_reconciliation_items",
            "Items the reconciler holds (external orders/fills/positions, missed orders)",
            labels=["mode", "broker", "kind"],
        )
        q = select(
            reconcile_items.c.mode, reconcile_items.c.broker, reconcile_items.c.kind, func.count()
        ).group_by(reconcile_items.c.mode, reconcile_items.c.broker, reconcile_items.c.kind)
        for mode, broker, kind, n in self._rows(q):
            g.add_metric([mode, broker, kind], n)
        yield g

    # -- safety ---------------------------------------------------------------------------------------

    def _safety(self) -> Iterable[Metric]:
        from joe.safety.status import BREAKERS_KEY, MARGIN_KEY
        from joe.safety.trading_state import read_stored_state

        # Joe's own rule: a stored state that cannot be read is HALTED (never exported as active).
        rec, _why = read_stored_state(self.store)
        current = rec.state.value if rec is not None else "halted"
        g = GaugeMetricFamily("joe_trading_state", "1 for the current trading state", labels=["state"])
        for s in STATES:
            g.add_metric([s], 1.0 if s == current else 0.0)
        yield g
        yield GaugeMetricFamily(
            "joe_trading_halted",
            "1 while no new entries are allowed (REDUCING or HALTED)",
            value=0.0 if current == "active" else 1.0,
        )
        b = GaugeMetricFamily(
            "joe_breaker_tripped", "1 while the broker's circuit breaker is tripped", labels=["broker"]
        )
        breakers = self.store.get_state(BREAKERS_KEY) or {}
        for name, info in sorted(breakers.items()) if isinstance(breakers, dict) else []:
            tripped = isinstance(info, dict) and str(info.get("state", "")).lower() in ("tripped", "open")
            b.add_metric([str(name)], 1.0 if tripped else 0.0)
        yield b
        m = GaugeMetricFamily("joe_margin_cushion", "Last margin cushion reading (0..1)", labels=["broker"])
        margin = self.store.get_state(MARGIN_KEY)
        if isinstance(margin, dict) and margin.get("cushion") is not None:
            try:
                m.add_metric([str(margin.get("broker", "?"))], float(margin["cushion"]))
            except (TypeError, ValueError):
                pass
        yield m
        yield self._equity()

    def _equity(self) -> Metric:
        """The last equity point per mode: one row each (never the whole curve)."""
        from joe.store.schema import equity_history as equity_t

        e = GaugeMetricFamily("joe_equity", "Last equity point", labels=["mode"])
        for mode in ("paper", "live", "shadow"):
            q = (
                select(equity_t.c.equity)
                .where(equity_t.c.mode == mode)
                .order_by(equity_t.c.ts.desc(), equity_t.c.id.desc())
                .limit(1)
            )
            rows = self._rows(q)
            if rows:
                e.add_metric([mode], float(rows[0][0]))
        return e

    def _daemon(self) -> Iterable[Metric]:
        from joe.runtime.daemon import HEARTBEAT_KEY, heartbeat_health

        h = heartbeat_health(self.store, now=self.clock())
        yield GaugeMetricFamily(
            "joe_daemon_up", "1 while the daemon's heartbeat is fresh", value=float(h["running"])
        )
        age = GaugeMetricFamily("joe_daemon_heartbeat_age_seconds", "Age of the daemon's last heartbeat")
        quotes = CounterMetricFamily(
            "joe_quotes", "Quotes the daemon received (this daemon run)", labels=["broker"]
        )
        stale = GaugeMetricFamily(
            "joe_quote_stale_instruments", "Watched instruments without a fresh quote", labels=["broker"]
        )
        quote_age = GaugeMetricFamily(
            "joe_quote_age_seconds",
            "Age of the broker's newest quote now (its age at the heartbeat plus the heartbeat's age)",
            labels=["broker"],
        )
        beat: dict[str, Any] = self.store.get_state(HEARTBEAT_KEY) or {}
        if h["age_s"] is not None:
            age.add_metric([], float(h["age_s"]))
        sources = beat.get("sources") if isinstance(beat, dict) else None
        if isinstance(sources, dict) and sources:
            for broker, src in sorted(sources.items()):
                if not isinstance(src, dict):
                    continue
                quotes.add_metric([str(broker)], _num(src.get("quotes")))
                stale.add_metric([str(broker)], _num(src.get("stale")))
                q_age = src.get("quote_age_s")
                if isinstance(q_age, int | float) and h["age_s"] is not None:
                    quote_age.add_metric([str(broker)], float(q_age) + max(0.0, float(h["age_s"])))
        elif isinstance(beat, dict) and beat:  # a daemon without a quote source (--broker sim)
            n = beat.get("quotes")
            if isinstance(n, int | float):
                quotes.add_metric(["none"], float(n))
            st = beat.get("stale")
            stale.add_metric(["none"], float(len(st) if isinstance(st, list | dict) else (st or 0)))
        connected = GaugeMetricFamily(
            "joe_daemon_broker_connected", "1 while the live daemon's broker is connected"
        )
        unexplained = GaugeMetricFamily(
            "joe_reconciliation_unexplained",
            "1 when the daemon's last reconciliation found an unexplained mismatch",
        )
        if isinstance(beat, dict) and "broker_connected" in beat:
            connected.add_metric([], 1.0 if beat.get("broker_connected") else 0.0)
        rec = beat.get("reconciled") if isinstance(beat, dict) else None
        if isinstance(rec, dict):
            unexplained.add_metric([], 0.0 if rec.get("explained") else 1.0)
        yield age
        yield quotes
        yield stale
        yield quote_age
        yield connected
        yield unexplained


def _num(v: Any) -> float:
    return float(v) if isinstance(v, int | float) else 0.0


def metrics_registry(
    store: Store, *extra: Collector, clock: Callable[[], datetime] = utcnow
) -> CollectorRegistry:
    """A registry with the store collector (and `extra` collectors, e.g. `AuditLatency`)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(StoreCollector(store, clock))
    for c in extra:
        reg.register(c)
    return reg
