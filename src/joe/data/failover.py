"""Market-data failover between the two brokers (issue 19, config `brokers.failover`).

When the run's broker (the *primary*) cannot give data — it does not connect, its connection drops
(`BrokerUnavailable`, a socket error), or a request outlives `request_timeout_s` — the instruments
both brokers carry take their bars and quotes from the other broker (the *secondary*), mapped by the
maintained instrument map (`brokers.failover.instruments`: IBKR symbol -> Capital.com epic).

**Price basis.** A CFD is not always priced like the cash instrument (another unit, an index CFD on
the future, a financing basis). The secondary's price is used only when its latest close agrees with
the primary's last known price of the same instrument — its last cached daily bar
(`<data dir>/cache/bars`), at most a few days old — within `price_tolerance_pct`. No reference, a
reference too old, or a gap beyond the tolerance: the instrument gets no price (and so no entry),
said per symbol and audited.

**Health, audit, alerts.** `BrokerHealth` keeps which broker is down and since when in the store
(`kv_state` key `failover.health`), so a later run or the daemon measures the whole outage: each
failover is audited `failover.started` (broker, the other one, why) and alerted; the first successful
contact afterwards is audited `failover.recovered` with `down_s`, the outage's duration, and alerted.
Every price refused on its basis is audited `failover.basis_refused`.

An instrument only the failed broker offers gets no price: it is not analysed, so it takes no entry.
Positions are never moved: execution stays at the broker that holds them (`joe.execution.venues`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from joe.brokers.base import BrokerUnavailable, MarketData, Sentiment
from joe.core.clock import utcnow
from joe.core.events import AuditSink
from joe.core.models import Instrument, Quote

HEALTH_KEY = "failover.health"  # {broker: {"down_since": iso, "reason": str}}
# What "the broker's data is unavailable" looks like from its client (a refused or dropped socket,
# a request that never answers); a broker answering "no such instrument" is not a failover.
UNAVAILABLE: tuple[type[BaseException], ...] = (BrokerUnavailable, ConnectionError, OSError, TimeoutError)

Notify = Callable[[str, str], Awaitable[None]]  # (title, body) -> an alert
Reference = Callable[[str], tuple[pd.Timestamp, float] | None]  # the primary's last (day, close)


@dataclass(frozen=True, slots=True)
class InstrumentMap:
    """IBKR symbol <-> Capital.com epic, for instruments both brokers carry."""

    ibkr_to_capital: dict[str, str]

    def other(self, broker: str, symbol: str) -> str | None:
        """The other broker's name for `symbol` of `broker`, or None when it is not mapped."""
        if broker == "ibkr":
            return self.ibkr_to_capital.get(symbol)
        for ib, epic in self.ibkr_to_capital.items():
            if epic == symbol:
                return ib
        return None

    def symbols(self, broker: str) -> list[str]:
        """Every mapped symbol as `broker` names it."""
        if broker == "ibkr":
            return list(self.ibkr_to_capital)
        return list(self.ibkr_to_capital.values())


@dataclass(frozen=True, slots=True)
class BasisVerdict:
    ok: bool
    detail: str


# The failed broker's last price must be this recent to stand as the reference (a weekend and a holiday).
MAX_REFERENCE_AGE_DAYS = 4


def basis_check(
    symbol: str,
    primary: str,
    other_symbol: str,
    secondary: str,
    reference: tuple[pd.Timestamp, float] | None,
    bars: pd.DataFrame,
    tolerance_pct: Decimal,
) -> BasisVerdict:
    """Does the secondary's price of `other_symbol` stand for `symbol`? Its latest close is compared with
    the primary's last known close (`reference`: its day and price), which must be at most
    `MAX_REFERENCE_AGE_DAYS` older. The market's move since the reference counts against the check: a
    long outage in a moving market refuses rather than guesses (fail closed)."""
    if reference is None or not reference[1] > 0:
        return BasisVerdict(
            False, f"no {primary} price of {symbol} to check {secondary} {other_symbol} against"
        )
    if bars.empty:
        return BasisVerdict(False, f"{secondary} has no bars for {other_symbol}")
    day, ref = pd.Timestamp(reference[0]), reference[1]
    last_day = pd.Timestamp(bars.index[-1])
    age = (last_day.normalize() - day.normalize()).days
    if age > MAX_REFERENCE_AGE_DAYS:
        return BasisVerdict(
            False,
            f"{primary}'s last price of {symbol} ({day.date()}) is {age} days older than {secondary}'s: "
            "too old to check the price basis",
        )
    other = float(bars["close"].iloc[-1])
    gap = abs(other / ref - 1.0) * 100.0
    text = (
        f"{secondary} {other_symbol} {other:g} ({last_day.date()}) vs {primary} {symbol} {ref:g} "
        f"({day.date()}): {gap:.2f}% apart (tolerance {tolerance_pct}%)"
    )
    return BasisVerdict(gap <= float(tolerance_pct), text)


class BrokerHealth:
    """Which broker is down and since when, kept in the store; audits and alerts every change."""

    def __init__(
        self,
        store: Any,
        audit: AuditSink,
        *,
        clock: Callable[[], datetime] = utcnow,
        notify: Notify | None = None,
    ) -> None:
        self.store = store
        self.audit = audit
        self.clock = clock
        self.notify = notify

    def _state(self) -> dict[str, dict[str, str]]:
        raw = self.store.get_state(HEALTH_KEY)
        return dict(raw) if isinstance(raw, dict) else {}

    def down_since(self, broker: str) -> datetime | None:
        entry = self._state().get(broker)
        return datetime.fromisoformat(entry["down_since"]) if entry else None

    async def down(self, broker: str, to: str, reason: str) -> None:
        """`broker` failed: recorded once per outage (a later failure in the same outage is not new)."""
        state = self._state()
        if broker in state:
            return
        now = self.clock()
        state[broker] = {"down_since": now.isoformat(), "reason": reason[:300]}
        self.store.set_state(HEALTH_KEY, state)
        self.audit.record("failover.started", {"broker": broker, "to": to, "reason": reason[:300]})
        await self._notify(
            f"Failover: {broker} down, prices from {to}",
            f"{broker}: {reason[:300]}. Mapped instruments take {to}'s prices (price basis checked); "
            f"no new entry goes to {broker}; its positions stay there with their broker-side stops.",
        )

    async def up(self, broker: str) -> float | None:
        """`broker` answered again: the outage's duration in seconds (None when it was not down)."""
        state = self._state()
        entry = state.pop(broker, None)
        if entry is None:
            return None
        down_s = max(0.0, (self.clock() - datetime.fromisoformat(entry["down_since"])).total_seconds())
        self.store.set_state(HEALTH_KEY, state)
        self.audit.record(
            "failover.recovered",
            {"broker": broker, "down_since": entry["down_since"], "down_s": round(down_s, 3),
             "reason": entry.get("reason", "")},
        )  # fmt: skip
        await self._notify(
            f"Failover: {broker} back after {down_s:.0f} s",
            f"{broker} answers again (down since {entry['down_since']}); it is reconciled before it takes "
            "new orders.",
        )
        return down_s

    async def _notify(self, title: str, body: str) -> None:
        if self.notify is None:
            return
        try:
            await self.notify(title, body)
        except Exception:  # an alert channel never decides what trades
            pass


@dataclass
class FailoverMarketData:
    """A `MarketData` over the primary broker that falls back to the secondary per instrument.

    `primary` is None when it did not connect. `sources` says where each symbol's price came from,
    `refused` why a symbol got none."""

    primary_name: str
    primary: MarketData | None
    secondary_name: str
    open_secondary: Callable[[], Awaitable[MarketData]]
    imap: InstrumentMap
    tolerance_pct: Decimal
    reference: Reference
    health: BrokerHealth
    timeout_s: float = 60.0
    sources: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    _secondary: MarketData | None = None
    _primary_down: bool = False

    def __post_init__(self) -> None:
        self.name = self.primary_name
        self._primary_down = self.primary is None
        self._opening = asyncio.Lock()

    @property
    def failed_over(self) -> bool:
        return self._primary_down

    def __getattr__(self, item: str) -> Any:  # locate(), instrument(), findings... of the primary
        if item.startswith("_") or self.__dict__.get("primary") is None or self.__dict__.get("_primary_down"):
            raise AttributeError(item)
        return getattr(self.__dict__["primary"], item)

    async def _fail(self, exc: BaseException) -> None:
        self._primary_down = True
        why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        await self.health.down(self.primary_name, self.secondary_name, why)

    async def secondary(self) -> MarketData:
        """The other broker, connected once (histories are fetched concurrently: one connection, since
        IBKR refuses a second one with the same clientId)."""
        async with self._opening:
            if self._secondary is None:
                self._secondary = await self.open_secondary()
        return self._secondary

    async def _try_primary(self, call: Callable[[MarketData], Awaitable[Any]]) -> tuple[bool, Any]:
        if self.primary is None or self._primary_down:
            return False, None
        try:
            return True, await asyncio.wait_for(call(self.primary), self.timeout_s)
        except UNAVAILABLE as exc:
            await self._fail(exc)
            return False, None

    async def universe(self, scan: str | None = None) -> list[Instrument]:
        ok, got = await self._try_primary(lambda md: md.universe(scan))
        if ok:
            return list(got)
        # The failed broker's scanners are out of reach: the universe is what both brokers carry.
        return [Instrument(symbol=s) for s in self.imap.symbols(self.primary_name)]

    async def history(
        self, symbol: str, timeframe: str = "1d", start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame:
        ok, got = await self._try_primary(lambda md: md.history(symbol, timeframe, start, end))
        if ok:
            self.sources[symbol] = self.primary_name
            return got  # type: ignore[no-any-return]
        other = self.imap.other(self.primary_name, symbol)
        if other is None:
            why = f"{self.primary_name} unavailable and {symbol} is not in brokers.failover.instruments"
            self.refused[symbol] = why
            raise BrokerUnavailable(why)
        bars = await (await self.secondary()).history(other, timeframe, start, end)
        verdict = basis_check(
            symbol,
            self.primary_name,
            other,
            self.secondary_name,
            self.reference(symbol),
            bars,
            self.tolerance_pct,
        )
        if not verdict.ok:
            self.refused[symbol] = f"price basis: {verdict.detail}"
            self.health.audit.record(
                "failover.basis_refused",
                {"symbol": symbol, "broker": self.secondary_name, "other": other, "detail": verdict.detail},
            )
            raise BrokerUnavailable(f"{symbol}: {self.secondary_name} price not used: {verdict.detail}")
        self.sources[symbol] = f"{self.secondary_name} ({other})"
        return bars

    async def quotes(self, symbols: Sequence[str]) -> dict[str, Quote]:
        ok, got = await self._try_primary(lambda md: md.quotes(symbols))
        if ok:
            for s in got:
                self.sources[s] = self.primary_name
            return dict(got)
        # Only symbols whose bars already passed the basis check this run take the other's quotes.
        usable = {s: self.imap.other(self.primary_name, s) for s in symbols if s in self.sources}
        wanted = {o: s for s, o in usable.items() if o is not None}
        if not wanted:
            return {}
        got = await (await self.secondary()).quotes(list(wanted))
        out: dict[str, Quote] = {}
        for other, q in got.items():
            sym = wanted[other]
            out[sym] = replace(q, symbol=sym)
        return out

    async def sentiment(self, symbols: Sequence[str]) -> dict[str, Sentiment]:
        ok, got = await self._try_primary(lambda md: md.sentiment(symbols))
        return dict(got) if ok else {}

    async def refresh_references(self) -> None:
        """While the primary is healthy, fetch (through its bar cache) every mapped instrument the run did
        not ask for, so that the next outage finds a recent reference price for each of them."""
        for sym in self.imap.symbols(self.primary_name):
            if sym in self.sources or self._primary_down or self.primary is None:
                continue
            try:
                await asyncio.wait_for(self.primary.history(sym, "1d"), self.timeout_s)
            except UNAVAILABLE as exc:
                await self._fail(exc)
            except Exception:  # the primary does not carry it: no reference, the basis check will say so
                continue

    def lines(self) -> list[str]:
        """What the run's warnings and report say about where prices came from."""
        out: list[str] = []
        used = sorted(s for s, src in self.sources.items() if src != self.primary_name)
        if self._primary_down:
            out.append(
                f"FAILOVER: {self.primary_name} unavailable: prices from {self.secondary_name} for "
                f"{len(used)} mapped instrument(s) ({', '.join(used[:10]) or 'none'}); no entry goes to "
                f"{self.primary_name}"
            )
        out += [f"no price for {s}: {why}" for s, why in sorted(self.refused.items())[:20]]
        return out
