"""JSON renderings of simulator state in the shapes of the wire spec (markets, positions, orders, prices).

Shapes follow the recorded answers (tests/capital/fixtures/recorded): every price sits on the
instrument's grid (tick = 10^-decimalPlacesFactor) and is sent as the shortest float of that grid
value, so no answer carries float noise.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from joe.simulators.capital.bars import LiveTape, QuoteBar, SideBar, bar_start
from joe.simulators.capital.catalog import BY_EPIC, RESOLUTION_SECONDS, HistBar, generate_history
from joe.simulators.capital.exchange import Exchange, SimPosition, SimWorkingOrder, fmt
from joe.simulators.capital.rules import ApiError
from joe.simulators.common.prices import on_grid

_DATE_FMT = "%Y-%m-%dT%H:%M:%S"
LEVERAGE = 20  # what positions and working orders report (the recordings show 20)


def market_summary(ex: Exchange, epic: str, hist: HistoryStore) -> dict[str, Any]:
    """A market summary as `/markets`, `/marketnavigation/{id}`, `/watchlists/{id}` and the `market` /
    `marketData` of positions and orders send it: prices on the instrument's grid, the day's range
    and change from the same bars `GET /prices` serves, plus `pipPosition` / `tickSize`."""
    spec = BY_EPIC[epic]
    bid, ask = ex.quote(epic)
    hist.observe(epic)
    day = hist.day_bar(epic)
    prev = hist.prev_close(epic)
    net = bid - prev
    return {
        "delayTime": 0,
        "epic": epic,
        "symbol": epic,
        "netChange": float(net),
        "lotSize": 1,
        "expiry": "-",
        "instrumentType": spec.type,
        "instrumentName": spec.name,
        "high": float(day.bid.h),
        "low": float(day.bid.l),
        "percentageChange": round(float(net / prev * 100), 4) if prev else 0.0,
        **ex.dates("updateTime", ex.now()),
        "bid": float(bid),
        "offer": float(ask),
        "streamingPricesAvailable": True,
        "marketStatus": ex.status[epic],
        "scalingFactor": 1,
        "marketModes": ["REGULAR"],
        "pipPosition": spec.pip_position,
        "tickSize": float(spec.tick),
    }


def market_details(ex: Exchange, epic: str, hist: HistoryStore) -> dict[str, Any]:
    spec = ex.spec(epic)
    summary = market_summary(ex, epic, hist)
    hours = ["00:00 - 00:00"] if spec.weekends else []
    week = ["00:00 - 23:59"]
    return {
        "instrument": {
            "epic": epic,
            "symbol": epic,
            "expiry": "-",
            "name": spec.name,
            "lotSize": 1,
            "type": spec.type,
            "guaranteedStopAllowed": True,
            "streamingPricesAvailable": True,
            "currency": spec.currency,
            "marginFactor": float(spec.margin_pct),
            "marginFactorUnit": "PERCENTAGE",
            "openingHours": {
                "mon": week,
                "tue": week,
                "wed": week,
                "thu": week,
                "fri": week,
                "sat": hours,
                "sun": hours,
                "zone": "UTC",
            },
            "overnightFee": {
                "longRate": -0.0231,
                "shortRate": 0.0012,
                "swapChargeTimestamp": 1700000000000,
                "swapChargeInterval": 1440,
            },
            "country": "US",
        },
        "dealingRules": {
            "minStepDistance": {"unit": "POINTS", "value": float(spec.tick)},
            "minDealSize": {"unit": "POINTS", "value": float(spec.min_size)},
            "maxDealSize": {"unit": "POINTS", "value": float(spec.max_size)},
            "minSizeIncrement": {"unit": "POINTS", "value": float(spec.size_increment)},
            "minGuaranteedStopDistance": {"unit": "PERCENTAGE", "value": 1.0},
            "minStopOrProfitDistance": {"unit": "PERCENTAGE", "value": float(spec.min_stop_pct)},
            "maxStopOrProfitDistance": {"unit": "PERCENTAGE", "value": float(spec.max_stop_pct)},
            "marketOrderPreference": "AVAILABLE_DEFAULT_OFF",
            "trailingStopsPreference": "AVAILABLE",
        },
        "snapshot": {
            "marketStatus": summary["marketStatus"],
            "netChange": summary["netChange"],
            "percentageChange": summary["percentageChange"],
            "updateTime": summary["updateTime"],
            "delayTime": 0,
            "bid": summary["bid"],
            "offer": summary["offer"],
            "high": summary["high"],
            "low": summary["low"],
            "decimalPlacesFactor": spec.decimals,
            "scalingFactor": 1,
            "marketModes": ["REGULAR"],
        },
    }


def position_json(ex: Exchange, p: SimPosition, currency: str, hist: HistoryStore) -> dict[str, Any]:
    bid, ask = ex.quote(p.epic)
    pos: dict[str, Any] = {
        "contractSize": 1,
        **ex.dates("createdDate", p.created),
        "dealId": p.deal_id,
        "dealReference": p.deal_reference or "p_" + p.deal_id,
        "workingOrderId": p.working_order_id,
        "size": float(p.size),
        "leverage": LEVERAGE,
        "upl": float(round(ex.upl(p, bid, ask), 2)),
        "direction": p.direction,
        "level": float(p.level),
        "currency": currency,
        "guaranteedStop": p.bracket.guaranteed,
        "trailingStop": p.bracket.trailing,
    }
    if p.bracket.stop_level is not None:
        pos["stopLevel"] = float(p.bracket.stop_level)
    if p.bracket.stop_distance is not None:
        pos["stopDistance"] = float(p.bracket.stop_distance)
    if p.bracket.profit_level is not None:
        pos["profitLevel"] = float(p.bracket.profit_level)
    return {"position": pos, "market": market_summary(ex, p.epic, hist)}


def order_json(ex: Exchange, o: SimWorkingOrder, currency: str, hist: HistoryStore) -> dict[str, Any]:
    tick = BY_EPIC[o.epic].tick
    data: dict[str, Any] = {
        "dealId": o.deal_id,
        "direction": o.direction,
        "epic": o.epic,
        "orderSize": float(o.size),
        "orderLevel": float(o.level),
        "timeInForce": "GOOD_TILL_DATE" if o.good_till else "GOOD_TILL_CANCELLED",
        **ex.dates("createdDate", o.created),
        "guaranteedStop": o.body.get("guaranteedStop") is True,
        "trailingStop": o.body.get("trailingStop") is True,
        "orderType": o.order_type,
        "currencyCode": currency,
        "leverage": LEVERAGE,
    }
    if o.deal_reference:  # the client's own reference (see `desk` on client-named requests)
        data["dealReference"] = o.deal_reference
    if o.good_till:
        data.update(ex.dates("goodTillDate", o.good_till))
    # Legs are reported as signed offsets from the order level (spec §5.7; the recorded
    # `GET /workingorders` has a BUY SILVER limit at 20 with `stopDistance: -3, profitDistance: 3`):
    # orderLevel + offset is the leg's level, so a BUY's stop is negative and a SELL's positive.
    sign = 1 if o.direction == "BUY" else -1
    for leg, key, side in (("stop", "stopDistance", -1), ("profit", "profitDistance", 1)):
        level = o.body.get(leg + "Level")
        if isinstance(level, int | float) and not isinstance(level, bool):
            data[key] = float(on_grid(Decimal(repr(level)) - o.level, tick))
        elif isinstance(o.body.get(key), int | float) and not isinstance(o.body.get(key), bool):
            data[key] = float(on_grid(side * sign * abs(Decimal(repr(o.body[key]))), tick))
    return {"workingOrderData": data, "marketData": market_summary(ex, o.epic, hist)}


def parse_qdate(value: str, code: str) -> datetime:
    try:
        return datetime.strptime(value, _DATE_FMT).replace(tzinfo=UTC)
    except ValueError:
        raise ApiError(400, code) from None


class HistoryStore:
    """Price bars per (epic, resolution): seeded history up to the bar before the simulator started,
    then the live tape. The generated part closes exactly at the first live quote, so the series is
    continuous and its newest (forming) bar closes at the live price."""

    def __init__(self, ex: Exchange) -> None:
        self.ex = ex
        self.anchor = ex.now()
        self.tape = LiveTape()
        self._opening = {epic: ex.quote(epic) for epic in ex.prices}
        self._seeded_cache: dict[tuple[str, str], list[HistBar]] = {}
        self._grid_cache: dict[tuple[str, str, int], QuoteBar] = {}
        for epic in ex.prices:
            self.observe(epic)

    def observe(self, epic: str) -> None:
        """Record the desk's current quote of `epic` on the live tape (call after each price change)."""
        bid, ask = self.ex.quote(epic)
        self.tape.observe(epic, self.ex.now(), bid, ask)

    def _seeded(self, epic: str, resolution: str) -> list[HistBar]:
        """The seeded mid-price bars before the live ones (cached; cheap floats)."""
        key = (epic, resolution)
        if key not in self._seeded_cache:
            bid0, ask0 = self._opening[epic]
            before_live = bar_start(self.anchor, resolution) - timedelta(seconds=1)
            self._seeded_cache[key] = generate_history(
                self.ex.seed, self.ex.spec(epic), resolution, before_live, float((bid0 + ask0) / 2)
            )
        return self._seeded_cache[key]

    def _quote_bar(self, epic: str, resolution: str, i: int) -> QuoteBar:
        """Seeded bar `i` with bid/ask on the grid (the live spread); the last closes at the first quote."""
        key = (epic, resolution, i)
        if key not in self._grid_cache:
            seeded = self._seeded(epic, resolution)
            b, proc = seeded[i], self.ex.prices[epic]
            o, h, lo, c = (proc.bid_ask(x) for x in (b.open, b.high, b.low, b.close))
            if i == len(seeded) - 1:
                c = self._opening[epic]  # join the live quote exactly
            bid = SideBar(o[0], max(h[0], o[0], c[0]), min(lo[0], o[0], c[0]), c[0])
            ask = SideBar(o[1], max(h[1], o[1], c[1]), min(lo[1], o[1], c[1]), c[1])
            self._grid_cache[key] = QuoteBar(b.start, bid, ask, b.volume)
        return self._grid_cache[key]

    def generated(self, epic: str, resolution: str) -> list[QuoteBar]:
        """All seeded bars before the live ones, on the instrument's grid."""
        return [self._quote_bar(epic, resolution, i) for i in range(len(self._seeded(epic, resolution)))]

    def bars(self, epic: str, resolution: str) -> list[QuoteBar]:
        """Generated history followed by the live bars, oldest first, each stamped at its UTC start."""
        return [*self.generated(epic, resolution), *self.tape.bars(epic, resolution)]

    def window(
        self, epic: str, resolution: str, lo: datetime | None, hi: datetime | None, max_n: int
    ) -> list[QuoteBar]:
        """Bars starting in [lo, hi] (either open): the first `max_n` from `lo`, else the last `max_n`.

        Only the chosen seeded bars are put on the grid, so a request costs what it returns.
        """
        seeded = self._seeded(epic, resolution)
        live = [b for b in self.tape.bars(epic, resolution) if hi is None or b.start <= hi]
        idx = [
            i for i, b in enumerate(seeded) if (lo is None or b.start >= lo) and (hi is None or b.start <= hi)
        ]
        if lo is not None:
            live = [b for b in live if b.start >= lo]
            take = idx[:max_n]
            return [*(self._quote_bar(epic, resolution, i) for i in take), *live[: max_n - len(take)]]
        live = live[-max_n:]
        take = idx[-(max_n - len(live)) :] if max_n > len(live) else []
        return [*(self._quote_bar(epic, resolution, i) for i in take), *live]

    def day_bar(self, epic: str) -> QuoteBar:
        """Today's (UTC) bar so far; the live tape always holds the current quote."""
        now = self.ex.now()
        bar = self.tape.bar(epic, "DAY", bar_start(now, "DAY"))
        if bar is None:
            bid, ask = self.ex.quote(epic)
            bar = QuoteBar.first(bar_start(now, "DAY"), bid, ask)
        return bar

    def prev_close(self, epic: str) -> Decimal:
        """The bid close of the last bar before today (UTC): the base of `netChange`."""
        today = bar_start(self.ex.now(), "DAY")
        first = self.tape.first_start(epic)
        if first is not None and first < today:
            before = [b for b in self.tape.bars(epic, "MINUTE") if b.start < today]
            return before[-1].bid.c
        return self._opening[epic][0]  # = the seeded DAY history's last close

    def prices(self, epic: str, query: dict[str, str]) -> dict[str, Any]:
        """`GET /prices/{epic}` with the reported range rules (spec §6.5).

        Without `from`/`to` the answer ends with the current (forming) bar, as recorded.
        """
        spec = self.ex.spec(epic)
        resolution = query.get("resolution", "MINUTE")
        if resolution not in RESOLUTION_SECONDS:
            raise ApiError(400, "error.invalid.resolution")
        try:
            max_n = int(query.get("max", "10"))
        except ValueError:
            raise ApiError(400, "error.invalid.max") from None
        if not 1 <= max_n <= 1000:
            raise ApiError(400, "error.invalid.max")
        lo = parse_qdate(query["from"], "error.invalid.from") if "from" in query else None
        hi = parse_qdate(query["to"], "error.invalid.to") if "to" in query else None
        now = self.ex.now()
        if hi is not None and hi > now:
            raise ApiError(400, "error.invalid.daterange")
        if lo is not None and hi is not None:
            if lo > hi:
                raise ApiError(400, "error.invalid.daterange")
            if (hi - lo).total_seconds() > (max_n - 1) * RESOLUTION_SECONDS[resolution]:
                raise ApiError(400, "error.invalid.max.daterange")
        self.observe(epic)  # the forming bar reaches the live quote even between price steps
        sel = self.window(epic, resolution, lo, hi, max_n)
        if not sel:
            raise ApiError(404, "error.prices.not-found")

        def side(b: QuoteBar, field: str) -> dict[str, float]:
            return {"bid": float(getattr(b.bid, field)), "ask": float(getattr(b.ask, field))}

        return {
            "prices": [
                {
                    "snapshotTime": fmt(b.start + self.ex.tz_offset, False),
                    "snapshotTimeUTC": fmt(b.start, False),
                    "openPrice": side(b, "o"),
                    "closePrice": side(b, "c"),
                    "highPrice": side(b, "h"),
                    "lowPrice": side(b, "l"),
                    "lastTradedVolume": b.ticks,
                }
                for b in sel
            ],
            "instrumentType": spec.type,
        }
