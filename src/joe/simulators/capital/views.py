"""JSON renderings of simulator state in the shapes of the wire spec (markets, positions, orders, prices).

Shapes follow the recorded answers (tests/capital/fixtures/recorded): every price sits on the
instrument's grid (tick = 10^-decimalPlacesFactor) and is sent as the shortest float of that grid
value, so no answer carries float noise.
"""

from __future__ import annotations

from typing import Any

from joe.simulators.capital.catalog import BY_EPIC
from joe.simulators.capital.desk import cents
from joe.simulators.capital.exchange import Exchange, SimPosition, SimWorkingOrder
from joe.simulators.capital.history import HistoryStore, parse_qdate

__all__ = ["HistoryStore", "market_details", "market_summary", "order_json", "parse_qdate", "position_json"]

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
        "upl": float(cents(ex.upl(p, bid, ask))),
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
    data: dict[str, Any] = {
        "dealId": o.deal_id,
        "direction": o.direction,
        "epic": o.epic,
        "orderSize": float(o.size),
        "orderLevel": float(o.level),
        "timeInForce": "GOOD_TILL_DATE" if o.good_till else "GOOD_TILL_CANCELLED",
        **ex.dates("createdDate", o.created),
        "guaranteedStop": o.bracket.guaranteed,
        "trailingStop": o.bracket.trailing,
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
    # orderLevel + offset is the leg's level, whatever form (level, distance, amount) it was sent in.
    data.update(o.bracket.offsets_json(o.level))
    return {"workingOrderData": data, "marketData": market_summary(ex, o.epic, hist)}
