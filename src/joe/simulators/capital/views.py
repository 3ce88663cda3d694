"""JSON renderings of simulator state in the shapes of the wire spec (markets, positions, orders, prices)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from joe.simulators.capital.catalog import BY_EPIC, RESOLUTION_SECONDS, HistBar, generate_history
from joe.simulators.capital.exchange import Exchange, SimPosition, SimWorkingOrder, fmt
from joe.simulators.capital.rules import ApiError

_DATE_FMT = "%Y-%m-%dT%H:%M:%S"


def market_summary(ex: Exchange, epic: str) -> dict[str, Any]:
    spec = BY_EPIC[epic]
    bid, ask = ex.quote(epic)
    proc = ex.prices[epic]
    start = spec.start
    now = ex.now()
    return {
        "delayTime": 0,
        "epic": epic,
        "symbol": epic,
        "netChange": round(float(proc.quote.mid) - start, 5),
        "lotSize": 1,
        "expiry": "-",
        "instrumentType": spec.type,
        "instrumentName": spec.name,
        "high": float(ask) * 1.01,
        "low": float(bid) * 0.99,
        "percentageChange": round((float(proc.quote.mid) / start - 1) * 100, 2),
        **ex.dates("updateTime", now),
        "bid": float(bid),
        "offer": float(ask),
        "streamingPricesAvailable": True,
        "marketStatus": ex.status[epic],
        "scalingFactor": 1,
        "marketModes": ["REGULAR"],
    }


def market_details(ex: Exchange, epic: str) -> dict[str, Any]:
    spec = ex.spec(epic)
    summary = market_summary(ex, epic)
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
            "decimalPlacesFactor": max(0, -spec.tick.as_tuple().exponent),  # type: ignore[operator]
            "scalingFactor": 1,
            "marketModes": ["REGULAR"],
        },
    }


def position_json(ex: Exchange, p: SimPosition, currency: str) -> dict[str, Any]:
    bid, ask = ex.quote(p.epic)
    pos: dict[str, Any] = {
        "contractSize": 1,
        **ex.dates("createdDate", p.created),
        "dealId": p.deal_id,
        "dealReference": p.deal_reference or "p_" + p.deal_id,
        "workingOrderId": p.working_order_id,
        "size": float(p.size),
        "leverage": 20,
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
    return {"position": pos, "market": market_summary(ex, p.epic)}


def order_json(ex: Exchange, o: SimWorkingOrder, currency: str) -> dict[str, Any]:
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
    }
    if o.deal_reference:  # the client's own reference (see `desk` on client-named requests)
        data["dealReference"] = o.deal_reference
    if o.good_till:
        data.update(ex.dates("goodTillDate", o.good_till))
    # Levels are reported back as distances from the order level (spec §5.7).
    for leg, key in (("stop", "stopDistance"), ("profit", "profitDistance")):
        level = o.body.get(leg + "Level")
        if isinstance(level, int | float) and not isinstance(level, bool):
            data[key] = round(level - float(o.level), 10)
        elif isinstance(o.body.get(key), int | float):
            data[key] = o.body[key]
    return {"workingOrderData": data, "marketData": market_summary(ex, o.epic)}


def parse_qdate(value: str, code: str) -> datetime:
    try:
        return datetime.strptime(value, _DATE_FMT).replace(tzinfo=UTC)
    except ValueError:
        raise ApiError(400, code) from None


class HistoryStore:
    """Generated history per (epic, resolution), anchored at the simulator's start."""

    def __init__(self, ex: Exchange) -> None:
        self.ex = ex
        self.anchor = ex.now()
        self._cache: dict[tuple[str, str], list[HistBar]] = {}

    def bars(self, epic: str, resolution: str) -> list[HistBar]:
        key = (epic, resolution)
        if key not in self._cache:
            spec = self.ex.spec(epic)
            self._cache[key] = generate_history(self.ex.seed, spec, resolution, self.anchor, spec.start)
        return self._cache[key]

    def prices(self, epic: str, query: dict[str, str]) -> dict[str, Any]:
        """`GET /prices/{epic}` with the reported range rules (spec §6.5)."""
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
        bars = self.bars(epic, resolution)
        if lo is not None:
            sel = [b for b in bars if b.start >= lo and (hi is None or b.start <= hi)][:max_n]
        else:
            sel = [b for b in bars if hi is None or b.start <= hi][-max_n:]
        if not sel:
            raise ApiError(404, "error.prices.not-found")
        half = float(spec.tick) * 2
        nd = max(0, -spec.tick.as_tuple().exponent) + 1  # type: ignore[operator]

        def side(x: float) -> dict[str, float]:
            return {"bid": round(x - half, nd), "ask": round(x + half, nd)}

        return {
            "prices": [
                {
                    "snapshotTime": fmt(b.start + self.ex.tz_offset, False),
                    "snapshotTimeUTC": fmt(b.start, False),
                    "openPrice": side(b.open),
                    "closePrice": side(b.close),
                    "highPrice": side(b.high),
                    "lowPrice": side(b.low),
                    "lastTradedVolume": b.volume,
                }
                for b in sel
            ],
            "instrumentType": spec.type,
        }
