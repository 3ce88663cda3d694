"""The simulated dealing desk, part 2: working orders and the price-driven triggers.

Attached stops, take-profits, trailing stops and working orders are `SimOrder`s decided by the
shared `FillModel` on every price step (`on_price`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from joe.simulators.capital.desk import Desk, SimAccount, SimPosition, SimWorkingOrder, client_ref, fmt
from joe.simulators.capital.rules import (
    ApiError,
    Bracket,
    check_size,
    dec,
    direction_of,
    on_tick,
    parse_bracket,
)
from joe.simulators.common import SimOrder, SimOrderType

__all__ = ["Exchange", "SimAccount", "SimPosition", "SimWorkingOrder", "fmt"]


class Exchange(Desk):
    """All trading state of the simulator (see `Desk`) plus working orders and triggers."""

    # ------------------------------------------------------------------ working orders
    def create_order(self, acc: SimAccount, body: dict[str, Any], hide: int = 0) -> str:
        if not isinstance(body, dict):
            raise ApiError(400, "error.invalid.request")
        direction = direction_of(body)
        epic = body.get("epic")
        if not isinstance(epic, str) or not epic:
            raise ApiError(400, "error.null.epic")
        spec = self.spec(epic)
        size = check_size(spec, body)
        if "level" not in body:
            raise ApiError(400, "error.invalid.level")
        level = dec(body["level"], "error.invalid.level")
        on_tick(spec, level, "error.invalid.level")
        otype = body.get("type")
        if otype not in ("LIMIT", "STOP"):
            raise ApiError(400, "error.invalid.type")
        good_till = self._good_till(body)
        parse_bracket(spec, body, direction=direction, ref=level, size=size, hedging=acc.hedging)
        own = client_ref(body)
        ref = own or self._ref()
        bid, ask = self.quote(epic)
        touch = ask if direction == "BUY" else bid
        wrong = (otype == "LIMIT") == (level > touch if direction == "BUY" else level < touch)
        if wrong:
            reason = "LIMIT_ORDER_WRONG_SIDE_OF_MARKET" if otype == "LIMIT" else "WRONG_SIDE_OF_MARKET"
            return self._reject(ref, epic, direction, size, reason, reason, hide)
        deal_id, request_id = self._id(), self._id()
        side_type = SimOrderType.LIMIT if otype == "LIMIT" else SimOrderType.STOP
        sim = SimOrder(
            deal_id,
            epic,
            direction,
            size,
            side_type,
            limit_price=level if otype == "LIMIT" else None,
            stop_price=level if otype == "STOP" else None,
        )
        acc.orders.append(
            SimWorkingOrder(
                deal_id,
                epic,
                direction,
                size,
                level,
                otype,
                self.now(),
                good_till,
                {k: v for k, v in body.items() if k.startswith(("stop", "profit", "trailing", "guaranteed"))},
                sim,
                deal_reference=own,
            )
        )
        self._activity(
            acc,
            epic,
            deal_id,
            "USER",
            "WORKING_ORDER",
            "ACCEPTED",
            dealReference=own or None,
            size=float(size),
            direction=direction,
            level=float(level),
            guaranteedStop=flag_of(body, "guaranteedStop"),
        )
        return self._confirm(
            ref,
            {
                "status": "OPEN",
                "reason": "SUCCESS",
                "dealStatus": "ACCEPTED",
                "epic": epic,
                "dealId": request_id,
                "affectedDeals": [{"dealId": deal_id, "status": "OPENED"}],
                "level": float(level),
                "size": float(size),
                "direction": direction,
                "guaranteedStop": flag_of(body, "guaranteedStop"),
                "trailingStop": flag_of(body, "trailingStop"),
            },
            hide,
        )

    def _good_till(self, body: dict[str, Any]) -> datetime | None:
        gtd = body.get("goodTillDate")
        if gtd is None:
            return None
        try:
            ts = datetime.strptime(str(gtd), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            raise ApiError(400, "error.invalid.goodTillDate") from None
        if ts <= self.now():
            raise ApiError(400, "error.not-in-future.goodTillDate")
        return ts

    def find_order(self, acc: SimAccount, deal_id: str) -> SimWorkingOrder:
        for o in acc.orders:
            if o.deal_id == deal_id:
                return o
        raise ApiError(404, "error.not-found.dealId")

    def amend_order(self, acc: SimAccount, deal_id: str, body: dict[str, Any]) -> str:
        o = self.find_order(acc, deal_id)
        if not isinstance(body, dict):
            raise ApiError(400, "error.invalid.request")
        if "level" in body:
            level = dec(body["level"], "error.invalid.level")
            on_tick(self.spec(o.epic), level, "error.invalid.level")
            # The legs are kept as offsets from the order level (that is how `GET /workingorders`
            # reports them), so moving the level moves a stop/profit sent as a level with it.
            for key in ("stopLevel", "profitLevel"):
                leg = o.body.get(key)
                if isinstance(leg, int | float) and not isinstance(leg, bool) and key not in body:
                    o.body[key] = float(Decimal(repr(leg)) + level - o.level)
            o.level = level
            if o.order_type == "LIMIT":
                o.sim.limit_price = o.level
            else:
                o.sim.stop_price = o.level
        if "goodTillDate" in body:
            o.good_till = self._good_till(body)
        brk = {k: v for k, v in body.items() if k.startswith(("stop", "profit", "trailing", "guaranteed"))}
        if brk:
            parse_bracket(
                self.spec(o.epic), brk, direction=o.direction, ref=o.level, size=o.size, hedging=acc.hedging
            )
            o.body = brk
        self._activity(acc, o.epic, deal_id, "USER", "WORKING_ORDER", "MODIFIED", **order_details(o))
        return self._confirm(
            self._ref(),
            {
                "status": "AMENDED",
                "reason": "SUCCESS",
                "dealStatus": "ACCEPTED",
                "epic": o.epic,
                "dealId": self._id(),
                "affectedDeals": [{"dealId": deal_id, "status": "AMENDED"}],
                "level": float(o.level),
                "size": float(o.size),
                "direction": o.direction,
                "guaranteedStop": False,
                "trailingStop": False,
            },
        )

    def delete_order(self, acc: SimAccount, deal_id: str) -> str:
        o = self.find_order(acc, deal_id)
        acc.orders.remove(o)
        self._activity(acc, o.epic, deal_id, "USER", "WORKING_ORDER", "CANCELLED", **order_details(o))
        return self._confirm(
            self._ref(),
            {
                "status": "DELETED",
                "reason": "SUCCESS",
                "dealStatus": "ACCEPTED",
                "epic": o.epic,
                "dealId": self._id(),
                "affectedDeals": [{"dealId": deal_id, "status": "DELETED"}],
                "level": float(o.level),
                "size": float(o.size),
                "direction": o.direction,
                "guaranteedStop": False,
                "trailingStop": False,
            },
        )

    # ------------------------------------------------------------------ time passes
    def on_price(self, epic: str) -> None:
        """Fire any stop / take-profit / trailing stop / working order that the new quote reaches."""
        if self.status.get(epic) != "TRADEABLE":
            return
        bid, ask = self.quote(epic)
        now = self.now()
        for acc in self.accounts.values():
            for p in [p for p in acc.positions if p.epic == epic]:
                for order, source in ((p.stop_order, "SL"), (p.profit_order, "TP")):
                    if order is None or p not in acc.positions:
                        continue
                    hit = self.fill.check(order, bid, ask)
                    if order.order_type is SimOrderType.TRAIL:
                        p.bracket.stop_level = order.stop_price
                    if hit is not None:
                        self._close_at(acc, p, hit.price, source)
            for o in [o for o in acc.orders if o.epic == epic]:
                if o.good_till is not None and now >= o.good_till:
                    acc.orders.remove(o)
                    self._activity(
                        acc, epic, o.deal_id, "SYSTEM", "WORKING_ORDER", "EXPIRED", **order_details(o)
                    )
                    continue
                hit = self.fill.check(o.sim, bid, ask)
                if hit is None:
                    continue
                acc.orders.remove(o)
                self._activity(
                    acc, epic, o.deal_id, "SYSTEM", "WORKING_ORDER", "EXECUTED", **order_details(o, hit.price)
                )
                try:
                    brk = parse_bracket(
                        self.spec(epic),
                        o.body,
                        direction=o.direction,
                        ref=hit.price,
                        size=o.size,
                        hedging=acc.hedging,
                    )
                except ApiError:
                    brk = Bracket()
                self.execute(
                    acc,
                    epic,
                    o.direction,
                    o.size,
                    hit.price,
                    brk,
                    o.deal_id,
                    source="SYSTEM",
                    ref=o.deal_reference,
                )


def order_details(o: SimWorkingOrder, level: Decimal | None = None) -> dict[str, Any]:
    """What every activity row of a working order carries in `details` (as recorded rows do)."""
    return {
        "dealReference": o.deal_reference or None,
        "size": float(o.size),
        "direction": o.direction,
        "level": float(o.level if level is None else level),
        "guaranteedStop": flag_of(o.body, "guaranteedStop"),
    }


def flag_of(body: dict[str, Any], key: str) -> bool:
    return body.get(key) is True
