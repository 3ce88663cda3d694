"""Rules on the order itself: size (quantity, notional), fat-finger price band, stale quote, market closed."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from joe.core.models import UNDATED, AssetClass

if TYPE_CHECKING:
    from joe.safety.risk_gate import Denial, GateBook, ProposedOrder, RiskGate


def _deny(rule: str, message: str, value: object, limit: object) -> Denial:
    from joe.safety.risk_gate import Denial

    return Denial(rule, message, str(value), str(limit))


def _pct(x: Decimal) -> str:
    return f"{x.quantize(Decimal('0.01'))}%"


class MaxOrderQuantity:
    """``risk.max_order_quantity``: no order for more units than this (a typo'd size)."""

    name = "max_order_quantity"

    def check(self, order: ProposedOrder, book: GateBook, gate: RiskGate) -> Denial | None:
        limit = gate.config.max_order_quantity
        if abs(order.quantity) > limit:
            return _deny(self.name, f"{order.symbol} order quantity too large", abs(order.quantity), limit)
        if order.quantity == 0:
            return _deny(self.name, f"{order.symbol} order has no quantity", 0, "> 0")
        return None


class MaxOrderNotional:
    """One order's notional: at most ``risk.max_position_pct`` % of equity (one full position) and at
    most ``risk.max_order_notional`` in the account currency."""

    name = "max_order_notional"

    def check(self, order: ProposedOrder, book: GateBook, gate: RiskGate) -> Denial | None:
        cfg = gate.config
        if order.notional > cfg.max_order_notional:
            return _deny(self.name, f"{order.symbol} order notional", order.notional, cfg.max_order_notional)
        if book.equity <= 0:
            return _deny(self.name, "no equity to size against", book.equity, "> 0")
        pct = order.notional / book.equity * 100
        if pct > cfg.max_position_pct:
            return _deny(
                self.name,
                f"{order.symbol} order notional {order.notional}",
                _pct(pct),
                _pct(cfg.max_position_pct),
            )
        return None


# How far ahead of our clock a quote's own time may be (clock skew between the broker and this host; `joe
# doctor` measures it). Beyond it the time is not trusted: a negative age would be "fresh" forever.
MAX_FUTURE_SKEW_S = 2.0


class StaleQuote:
    """No entry on a stale price: live quotes older than ``risk.max_quote_age_s`` seconds; on daily
    bars, a last close older than the decision day. A quote without a trustworthy time is not fresh
    (review r1119 finding 6): no time (`UNDATED`) is an unknown age, and a live quote dated more than
    `MAX_FUTURE_SKEW_S` after now is refused."""

    name = "stale_quote"

    def check(self, order: ProposedOrder, book: GateBook, gate: RiskGate) -> Denial | None:
        q = book.quotes.get(order.symbol)
        if q is None:
            return _deny(self.name, f"no quote for {order.symbol}", "none", "a quote")
        if q.ts <= UNDATED:
            why = f"{order.symbol} quote has no time (unknown age)"
            return _deny(self.name, why, "no time", "a dated quote")
        if book.daily_bars:
            if q.ts.date() < book.now.date():
                return _deny(
                    self.name,
                    f"{order.symbol} last close is from {q.ts.date()}",
                    q.ts.date(),
                    book.now.date(),
                )
            return None
        age = (book.now - q.ts).total_seconds()
        if age < -MAX_FUTURE_SKEW_S:
            return _deny(
                self.name,
                f"{order.symbol} quote is dated {-age:.1f}s in the future (clock skew or a bad time)",
                f"{age:.1f}s",
                f">= -{MAX_FUTURE_SKEW_S}s",
            )
        if age > gate.config.max_quote_age_s:
            return _deny(
                self.name,
                f"{order.symbol} quote is {age:.1f}s old",
                f"{age:.1f}s",
                f"{gate.config.max_quote_age_s}s",
            )
        return None


class PriceBand:
    """Fat finger: the order price may be at most ``risk.price_band_pct`` % away from the last quote."""

    name = "price_band"

    def check(self, order: ProposedOrder, book: GateBook, gate: RiskGate) -> Denial | None:
        q = book.quotes.get(order.symbol)
        if q is None or q.price <= 0:
            return None  # StaleQuote already refuses a missing quote
        dev = abs(order.price - q.price) / q.price * 100
        if dev > gate.config.price_band_pct:
            return _deny(
                self.name,
                f"{order.symbol} price {order.price} vs last {q.price}",
                _pct(dev),
                _pct(gate.config.price_band_pct),
            )
        return None


@lru_cache(maxsize=8)
def _calendar(name: str) -> Any:
    from joe.data.calendars import load_exchange_calendar

    return load_exchange_calendar(name, start="1990-01-01")


@lru_cache(maxsize=8)
def _sessions(name: str) -> tuple[frozenset[date], date, date]:
    """The session days of calendar `name` (what `is_session` answers, as one set lookup per day) and
    the calendar's first and last session (read once: each read of the library's property builds a
    Timestamp, more than the rest of the rule's check)."""
    cal = _calendar(name)
    return frozenset(ts.date() for ts in cal.sessions), cal.first_session.date(), cal.last_session.date()


def _is_session(code: str, day: date) -> bool | None:
    """`day` is a session of `code` (None outside the calendar from 1990 on). Days the data's calendar
    covers (`joe.data.calendars.session_set`, about the last 20 years, already loaded by the data-quality
    stage; the same sessions) are read there; the calendar from 1990 is loaded only for older days."""
    from joe.data.calendars import session_set

    recent, first, last = session_set(code)
    if first <= day <= last:
        return day in recent
    sessions, first, last = _sessions(code)
    return day in sessions if first <= day <= last else None


# Exchanges Joe's instruments name, mapped to exchange-calendars codes. US listings (and anything
# priced in USD without an exchange) follow the NYSE calendar.
_CALENDARS = {"": "XNYS", "NYSE": "XNYS", "NASDAQ": "XNYS", "ARCA": "XNYS", "SMART": "XNYS", "LSE": "XLON"}


def _session_open(asset: AssetClass, exchange: str, currency: str, now: datetime, daily: bool) -> bool | None:
    """True/False when the market is open (daily: `now`'s day is a session); None when unknown."""
    if asset is AssetClass.CRYPTO:
        return True
    if asset is AssetClass.FX:
        return now.weekday() < 5  # FX trades around the clock on weekdays
    if asset not in (AssetClass.EQUITY, AssetClass.ETF, AssetClass.INDEX):
        return None  # CFD / commodity / future sessions differ per product: not judged here
    code = _CALENDARS.get(exchange.upper()) if exchange or currency == "USD" else None
    if code is None:
        return None
    day = date(now.year, now.month, now.day)
    if daily:
        return _is_session(code, day)
    from joe.data.calendars import open_on_minute

    return open_on_minute(_calendar(code), now.replace(second=0, microsecond=0))


class MarketClosed:
    """No entry while the instrument's market is closed (``risk.check_market_hours``): the broker's own
    status where the book has one (Capital.com marketStatus), else the exchange calendar — the day on
    daily bars, the minute on a live book."""

    name = "market_closed"

    def check(self, order: ProposedOrder, book: GateBook, gate: RiskGate) -> Denial | None:
        if not gate.config.check_market_hours:
            return None
        status = book.market_open.get(order.symbol)
        if status is not None and not book.daily_bars:
            if not status:
                return _deny(self.name, f"{order.symbol} market not tradeable at "
                             f"{book.now.isoformat(timespec='minutes')} (broker status)",
                             "closed", "open")  # fmt: skip
            return None
        inst = book.instruments.get(order.symbol)
        if inst is None:
            return None
        is_open = _session_open(inst.asset_class, inst.exchange, inst.currency, book.now, book.daily_bars)
        if is_open is False:
            when = book.now.date() if book.daily_bars else book.now.isoformat(timespec="minutes")
            return _deny(self.name, f"{order.symbol} market closed at {when}", "closed", "open")
        return None
